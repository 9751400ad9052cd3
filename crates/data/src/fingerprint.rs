//! Dataset fingerprints: `sha256:` and 64 hex digits.
//!
//! The digest covers a version tag, then each file's length (u64, little-endian) and bytes
//! as stored on disk, in a fixed order, then each sample count (u64, little-endian). File
//! names are not hashed, so `train-images-idx3-ubyte.gz` and `train-images.idx3-ubyte.gz`
//! with the same bytes give the same fingerprint. Compressing or decompressing a file does
//! change it, because the stored bytes change.

use sha2::{Digest, Sha256};

/// Prefix of every fingerprint string.
pub const PREFIX: &str = "sha256:";

/// Hashed first. A new scheme gets a new tag, so its fingerprints differ from the old ones.
const VERSION_TAG: &[u8] = b"toploss-dataset-fingerprint-v1\n";

/// Incremental fingerprint: add files in order, then finish with the sample counts.
#[derive(Debug, Clone)]
pub struct Fingerprinter {
    hasher: Sha256,
}

impl Default for Fingerprinter {
    fn default() -> Self {
        Self::new()
    }
}

impl Fingerprinter {
    /// Starts a fingerprint.
    pub fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update(VERSION_TAG);
        Self { hasher }
    }

    /// Adds one file's stored bytes; the length is hashed first so that file boundaries count.
    pub fn add_file(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    /// Adds the sample counts and returns the fingerprint string.
    pub fn finish(mut self, counts: &[u64]) -> String {
        for count in counts {
            self.hasher.update(count.to_le_bytes());
        }
        let digest = self.hasher.finalize();

        let mut text = String::with_capacity(PREFIX.len() + 2 * digest.len());
        text.push_str(PREFIX);
        for byte in digest {
            text.push_str(&format!("{byte:02x}"));
        }
        text
    }
}

/// Computes the fingerprint of `files` (stored bytes, in order) and sample `counts`.
pub fn fingerprint(files: &[&[u8]], counts: &[u64]) -> String {
    let mut fingerprinter = Fingerprinter::new();
    for file in files {
        fingerprinter.add_file(file);
    }
    fingerprinter.finish(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_has_prefix_and_64_hex_digits() {
        let value = fingerprint(&[b"abc"], &[1]);
        let hex = value.strip_prefix(PREFIX).unwrap();
        // SHA-256 is 32 bytes = 64 hex digits.
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
    }

    #[test]
    fn fingerprint_is_deterministic() {
        assert_eq!(
            fingerprint(&[b"abc", b"de"], &[3, 2]),
            fingerprint(&[b"abc", b"de"], &[3, 2])
        );
    }

    #[test]
    fn fingerprint_pinned_value() {
        // Pins the scheme: a change here breaks every stored run's fingerprint. Reference:
        // python3 -c "import hashlib,struct; h=hashlib.sha256();
        //   h.update(b'toploss-dataset-fingerprint-v1\n');
        //   h.update(struct.pack('<Q',3)+b'abc'); h.update(struct.pack('<Q',1));
        //   print(h.hexdigest())"
        assert_eq!(
            fingerprint(&[b"abc"], &[1]),
            "sha256:ad7e49f3287af951176be20d25c8c33e660f66ed2bc4229631993b17928b9efe"
        );
    }

    #[test]
    fn fingerprint_sees_each_input() {
        let base = fingerprint(&[b"abc", b"de"], &[3, 2]);
        // One byte changed.
        assert_ne!(base, fingerprint(&[b"abd", b"de"], &[3, 2]));
        // Same bytes, different file boundary.
        assert_ne!(base, fingerprint(&[b"ab", b"cde"], &[3, 2]));
        // Different count.
        assert_ne!(base, fingerprint(&[b"abc", b"de"], &[3, 1]));
    }
}
