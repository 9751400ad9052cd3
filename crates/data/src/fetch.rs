//! Downloads of the published dataset files, resumable and verified by their published MD5.
//!
//! A [`Manifest`] lists the files of one dataset with their official URL, size and MD5;
//! [`published`] returns the manifests of MNIST, Fashion-MNIST and CIFAR-10. [`fetch`]
//! downloads a manifest into a folder:
//!
//! - Each file is received into `NAME.part`. When a `.part` exists, the request carries
//!   `Range: bytes=LEN-` and the download resumes if the server responds with `206 Partial
//!   Content`. A `200 OK` response (the server ignores ranges) starts the file over.
//! - The size and the MD5 of the finished `.part` are checked before it is renamed to
//!   `NAME`, so a file under its final name is always complete and verified. A checksum or
//!   size mismatch removes the `.part`. A transfer that stops early keeps it, so the next
//!   call resumes.
//! - A file that is already present under its final name and matches its MD5 is skipped.
//! - A `.tar.gz` file with [`RemoteFile::extract`] members (CIFAR-10) is unpacked into the
//!   same folder, each member through its own `.part` file.
//!
//! With a mirror, a file is requested as `MIRROR/DATASET/NAME`, for example
//! `http://127.0.0.1:8000/mnist/train-images-idx3-ubyte.gz`. That is the layout that `fetch`
//! writes, so a served copy of a download folder works as a mirror.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::cifar;
use crate::{DatasetFormat, Error};

/// Maximum wait for a TCP and TLS connection to a server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Maximum wait for the response headers once the request is sent.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Maximum wait for the next bytes of the body. A transfer that stalls this long fails, and
/// the next call resumes it. There is no limit on the whole transfer, which depends on the link.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Bytes per read from the network and per write to the `.part` file.
const CHUNK_BYTES: usize = 64 * 1024;

/// Suffix of a file that is still being received or extracted.
pub const PART_SUFFIX: &str = ".part";

/// One file of a dataset on its server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// File name in the dataset folder, e.g. `train-images-idx3-ubyte.gz`.
    pub name: String,
    /// Official URL.
    pub url: String,
    /// Size in bytes, when published. A received file of another size is rejected.
    pub size: Option<u64>,
    /// Published MD5 digest, 32 lowercase hex digits.
    pub md5: String,
    /// Members to unpack when the file is a `.tar.gz` archive; empty for other files.
    pub extract: Vec<ArchiveMember>,
}

/// One file to unpack from a `.tar.gz` archive into the dataset folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMember {
    /// File name inside the archive and in the dataset folder. The archive entry is matched
    /// by its last path component, so the archive's own folders are dropped.
    pub name: String,
    /// Size in bytes, when known. An entry of another size is rejected.
    pub size: Option<u64>,
}

/// The files of one dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Dataset name: the subfolder of a download cache and of a mirror, e.g. `mnist`.
    pub name: String,
    /// The files, in download order.
    pub files: Vec<RemoteFile>,
}

/// Result of fetching one file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOutcome {
    /// File name, as in the manifest.
    pub name: String,
    /// The verified file.
    pub path: PathBuf,
    /// Whether it was downloaded or already present.
    pub status: FetchStatus,
    /// Number of archive members written to the folder (0 for files that are not archives,
    /// and for archives whose members were all present).
    pub extracted: usize,
}

/// Whether a file was downloaded by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchStatus {
    /// The file was present under its final name and matched its MD5.
    AlreadyPresent,
    /// The file was downloaded and verified.
    Downloaded {
        /// Size of the file in bytes.
        bytes: u64,
        /// Bytes kept from an earlier `.part` (0 when the download started from zero).
        resumed_from: u64,
    },
}

/// Progress of [`fetch`], passed to its callback.
#[derive(Debug, Clone, Copy)]
pub enum FetchEvent<'a> {
    /// The file is present and matches its MD5, so it is not downloaded.
    AlreadyPresent {
        /// The file.
        file: &'a RemoteFile,
    },
    /// The server responded and the body is about to be received.
    Started {
        /// The file.
        file: &'a RemoteFile,
        /// The URL requested.
        url: &'a str,
        /// Bytes kept from an earlier `.part` (0 when the download starts from zero).
        offset: u64,
        /// Size of the whole file in bytes, when known.
        total: Option<u64>,
        /// True when a `.part` existed but the server did not honour the range request, so
        /// the file starts over.
        restarted: bool,
    },
    /// Bytes received so far, counting the resumed part.
    Received {
        /// The file.
        file: &'a RemoteFile,
        /// Bytes of the file on disk.
        bytes: u64,
    },
    /// The file was verified and moved to its final name.
    Verified {
        /// The file.
        file: &'a RemoteFile,
        /// Size in bytes.
        bytes: u64,
    },
    /// Unpacking of an archive starts.
    Extracting {
        /// The archive.
        file: &'a RemoteFile,
    },
    /// Unpacking of an archive finished.
    Extracted {
        /// The archive.
        file: &'a RemoteFile,
        /// Number of members written.
        members: usize,
    },
}

/// MNIST from the S3 mirror that torchvision lists after the original host,
/// yann.lecun.com/exdb/mnist. MD5s as in torchvision's `datasets/mnist.py`, sizes of those
/// files.
const MNIST: [(&str, u64, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        9_912_422,
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        28_881,
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        1_648_877,
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        4_542,
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
];
const MNIST_BASE_URL: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

/// Fashion-MNIST: URLs and MD5s from the README of github.com/zalandoresearch/fashion-mnist
/// (torchvision lists the same). The host serves plain HTTP only; the MD5 check covers
/// integrity.
const FASHION_MNIST: [(&str, u64, &str); 4] = [
    (
        "train-images-idx3-ubyte.gz",
        26_421_880,
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    (
        "train-labels-idx1-ubyte.gz",
        29_515,
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    (
        "t10k-images-idx3-ubyte.gz",
        4_422_102,
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    (
        "t10k-labels-idx1-ubyte.gz",
        5_148,
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
];
const FASHION_MNIST_BASE_URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// CIFAR-10, binary version, from the dataset page <https://www.cs.toronto.edu/~kriz/cifar.html>,
/// which publishes the MD5. The size is that of the published archive.
const CIFAR10_ARCHIVE: &str = "cifar-10-binary.tar.gz";
const CIFAR10_URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const CIFAR10_SIZE: u64 = 170_052_171;
const CIFAR10_MD5: &str = "c32a1d4ab5d03f1284b67883e8d87530";

/// Records per CIFAR-10 batch file.
const CIFAR10_BATCH_RECORDS: u64 = 10_000;

/// Returns the manifest of a dataset that `fetch` can download: MNIST, Fashion-MNIST or
/// CIFAR-10. Other formats have no published files and return `None`.
pub fn published(format: DatasetFormat) -> Option<Manifest> {
    let idx_files = |files: &[(&str, u64, &str)], base_url: &str| -> Vec<RemoteFile> {
        files
            .iter()
            .map(|&(name, size, md5)| RemoteFile {
                name: name.to_string(),
                url: format!("{base_url}{name}"),
                size: Some(size),
                md5: md5.to_string(),
                extract: Vec::new(),
            })
            .collect()
    };

    let files = match format {
        DatasetFormat::Mnist => idx_files(&MNIST, MNIST_BASE_URL),
        DatasetFormat::FashionMnist => idx_files(&FASHION_MNIST, FASHION_MNIST_BASE_URL),
        DatasetFormat::Cifar10 => vec![cifar10_archive()],
        DatasetFormat::Idx | DatasetFormat::Folder | DatasetFormat::Csv => return None,
    };
    Some(Manifest {
        name: format.name().to_string(),
        files,
    })
}

/// Builds the entry of the CIFAR-10 binary archive, with the members that the `cifar10:`
/// reader needs.
fn cifar10_archive() -> RemoteFile {
    let batch_bytes = CIFAR10_BATCH_RECORDS * cifar::RECORD_BYTES as u64;
    let mut extract: Vec<ArchiveMember> = (1..=cifar::DATA_BATCHES)
        .map(|number| ArchiveMember {
            name: format!("data_batch_{number}.bin"),
            size: Some(batch_bytes),
        })
        .collect();
    extract.push(ArchiveMember {
        name: cifar::TEST_BATCH.to_string(),
        size: Some(batch_bytes),
    });
    extract.push(ArchiveMember {
        name: cifar::META_FILE.to_string(),
        size: None,
    });

    RemoteFile {
        name: CIFAR10_ARCHIVE.to_string(),
        url: CIFAR10_URL.to_string(),
        size: Some(CIFAR10_SIZE),
        md5: CIFAR10_MD5.to_string(),
        extract,
    }
}

/// Returns the URL that `file` is requested from: its official URL, or
/// `MIRROR/DATASET/NAME` when a mirror base URL is given.
pub fn file_url(manifest: &Manifest, file: &RemoteFile, mirror: Option<&str>) -> String {
    match mirror {
        Some(base) => format!(
            "{}/{}/{}",
            base.trim_end_matches('/'),
            manifest.name,
            file.name
        ),
        None => file.url.clone(),
    }
}

/// Downloads every file of `manifest` into `dir` (created if missing), verifies it and
/// unpacks the archives; see the module documentation for the rules.
///
/// `mirror` is a base URL that replaces the official locations. `progress` receives every
/// [`FetchEvent`]. Returning [`ControlFlow::Break`] for a [`FetchEvent::Received`] stops the
/// download with [`Error::Interrupted`] and keeps the `.part` file for the next call. The
/// return value for other events is ignored.
///
/// # Errors
///
/// An invalid mirror, an HTTP status other than 200 and 206, a network failure, a size or
/// MD5 mismatch, an archive without one of its members, or a file that cannot be written.
/// Each names the URL or the file.
pub fn fetch(
    manifest: &Manifest,
    dir: &Path,
    mirror: Option<&str>,
    progress: &mut dyn FnMut(FetchEvent<'_>) -> ControlFlow<()>,
) -> Result<Vec<FetchOutcome>, Error> {
    if let Some(base) = mirror {
        check_mirror(base)?;
    }
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;

    let agent = http_agent();
    let mut outcomes = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        let path = dir.join(&file.name);
        let status = if is_verified(file, &path)? {
            tracing::info!(path = %path.display(), "already present and verified");
            let _ = progress(FetchEvent::AlreadyPresent { file });
            FetchStatus::AlreadyPresent
        } else {
            let url = file_url(manifest, file, mirror);
            download(&agent, file, &url, &path, progress)?
        };

        // Unpack when the archive is new or a member is missing, so that an interrupted
        // extraction is completed by the next call.
        let downloaded = matches!(status, FetchStatus::Downloaded { .. });
        let extracted = if !file.extract.is_empty() && (downloaded || !members_present(file, dir)) {
            let _ = progress(FetchEvent::Extracting { file });
            let members = extract_members(file, &path, dir)?;
            let _ = progress(FetchEvent::Extracted { file, members });
            members
        } else {
            0
        };

        outcomes.push(FetchOutcome {
            name: file.name.clone(),
            path,
            status,
            extracted,
        });
    }
    Ok(outcomes)
}

/// Rejects a mirror that is not an `http://` or `https://` URL.
fn check_mirror(base: &str) -> Result<(), Error> {
    let lower = base.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(Error::InvalidOption {
            option: "--mirror",
            value: base.to_string(),
            reason: "expected a base URL that starts with http:// or https:// and names a \
                     host, e.g. http://127.0.0.1:8000/"
                .to_string(),
        }),
    }
}

/// Builds the one HTTP agent used for all files. Statuses are handled here rather than as ureq
/// errors, so that 206 and 416 can be told apart. No `Accept-Encoding` is sent, so the bytes
/// on disk are the published bytes.
fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_per_read(Some(READ_TIMEOUT))
        .user_agent(concat!("toploss/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Returns true when `path` exists with the file's size and MD5. A file with other contents
/// is logged and downloaded again, replacing it only once the new copy is verified.
fn is_verified(file: &RemoteFile, path: &Path) -> Result<bool, Error> {
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(Error::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if file.size.is_some_and(|size| size != metadata.len()) {
        tracing::warn!(
            path = %path.display(),
            expected = file.size,
            found = metadata.len(),
            "present with the wrong size; downloading it again"
        );
        return Ok(false);
    }
    let md5 = md5_of_file(path)?;
    if md5 != file.md5 {
        tracing::warn!(
            path = %path.display(),
            expected = %file.md5,
            found = %md5,
            "present with the wrong MD5; downloading it again"
        );
        return Ok(false);
    }
    Ok(true)
}

/// Returns the `.part` path of `path`.
fn part_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(PART_SUFFIX);
    path.with_file_name(name)
}

/// Downloads one file through its `.part`, verifies it and renames it to `path`.
fn download(
    agent: &ureq::Agent,
    file: &RemoteFile,
    url: &str,
    path: &Path,
    progress: &mut dyn FnMut(FetchEvent<'_>) -> ControlFlow<()>,
) -> Result<FetchStatus, Error> {
    let part = part_path(path);

    // A `.part` as large as the whole file cannot be resumed (the server would respond with
    // 416), so it starts over.
    let mut offset = file_len(&part)?;
    if offset > 0 && file.size.is_some_and(|size| offset >= size) {
        tracing::info!(part = %part.display(), bytes = offset, "discarding a full-size .part");
        remove_part(&part)?;
        offset = 0;
    }

    let (response, offset, restarted) = request(agent, url, &part, offset)?;
    let announced = response
        .body()
        .content_length()
        .map(|length| offset + length);
    if let (Some(expected), Some(announced)) = (file.size, announced)
        && announced != expected
    {
        remove_part(&part)?;
        return Err(Error::DownloadSize {
            url: url.to_string(),
            expected,
            found: announced,
            measurement: "the server announces",
        });
    }

    let _ = progress(FetchEvent::Started {
        file,
        url,
        offset,
        total: file.size.or(announced),
        restarted,
    });
    let received = receive_body(response, file, url, &part, offset, progress)?;

    // Verify size and MD5 before the rename, so the final name only ever contains a verified
    // file.
    if let Some(expected) = file.size
        && received < expected
    {
        // The server closed a response without a length early; the `.part` stays for resume.
        return Err(Error::DownloadIncomplete {
            url: url.to_string(),
            part,
            received,
            expected,
        });
    }
    let md5 = md5_of_file(&part)?;
    if md5 != file.md5 {
        remove_part(&part)?;
        return Err(Error::ChecksumMismatch {
            url: url.to_string(),
            expected: file.md5.clone(),
            found: md5,
        });
    }
    fs::rename(&part, path).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;

    tracing::info!(
        url,
        path = %path.display(),
        bytes = received,
        resumed_from = offset,
        "downloaded"
    );
    let _ = progress(FetchEvent::Verified {
        file,
        bytes: received,
    });
    Ok(FetchStatus::Downloaded {
        bytes: received,
        resumed_from: offset,
    })
}

/// Sends the GET request, with a range when `offset` > 0, and returns the response whose
/// body continues the `.part`, the offset that body starts at, and whether a range request
/// got the whole file in response. A server that ignores or rejects the range gets the
/// `.part` truncated.
fn request(
    agent: &ureq::Agent,
    url: &str,
    part: &Path,
    offset: u64,
) -> Result<(ureq::http::Response<ureq::Body>, u64, bool), Error> {
    let http_error = |source: ureq::Error| Error::Http {
        url: url.to_string(),
        source: Box::new(source),
    };

    let mut builder = agent.get(url);
    if offset > 0 {
        builder = builder.header("Range", format!("bytes={offset}-"));
    }
    let response = builder.call().map_err(http_error)?;
    let status = response.status().as_u16();

    match status {
        200 if offset == 0 => Ok((response, 0, false)),
        200 => {
            tracing::info!(
                url,
                offset,
                "the server ignored the range request; starting over"
            );
            truncate_part(part)?;
            Ok((response, 0, true))
        }
        206 if offset > 0 && content_range_start(&response) == Some(offset) => {
            tracing::info!(url, offset, "resuming");
            Ok((response, offset, false))
        }
        206 | 416 if offset > 0 => {
            // A range that does not start at the `.part`'s end (or that the server cannot
            // satisfy) gives bytes that do not continue the file: start over without one.
            tracing::info!(
                url,
                offset,
                status,
                "the server did not resume at the offset; starting over"
            );
            drop(response);
            truncate_part(part)?;
            let response = agent.get(url).call().map_err(http_error)?;
            match response.status().as_u16() {
                200 => Ok((response, 0, true)),
                status => Err(status_error(url, status, &response)),
            }
        }
        _ => Err(status_error(url, status, &response)),
    }
}

/// Returns the first byte position of a `Content-Range: bytes FIRST-LAST/TOTAL` header.
fn content_range_start(response: &ureq::http::Response<ureq::Body>) -> Option<u64> {
    let value = response.headers().get("content-range")?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim_start();
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}

/// Builds the error for an HTTP status that is neither 200 nor 206.
fn status_error(url: &str, status: u16, response: &ureq::http::Response<ureq::Body>) -> Error {
    let reason = response
        .status()
        .canonical_reason()
        .unwrap_or("unknown status");
    Error::HttpStatus {
        url: url.to_string(),
        status,
        reason: reason.to_string(),
    }
}

/// Appends the response body to the `.part` and returns the size of the `.part` afterwards.
fn receive_body(
    response: ureq::http::Response<ureq::Body>,
    file: &RemoteFile,
    url: &str,
    part: &Path,
    offset: u64,
    progress: &mut dyn FnMut(FetchEvent<'_>) -> ControlFlow<()>,
) -> Result<u64, Error> {
    let write_error = |source: io::Error| Error::Write {
        path: part.to_path_buf(),
        source,
    };
    // NOTE: there is no lock on the `.part`. Two fetches into one folder at the same time
    // append to the same file, which then fails its size or MD5 check and is removed.
    let mut output = OpenOptions::new()
        .create(true)
        .append(true)
        .open(part)
        .map_err(write_error)?;
    let mut reader = response.into_body().into_reader();
    let mut buffer = vec![0u8; CHUNK_BYTES];
    let mut received = offset;

    loop {
        let count = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                // Keep what arrived so that the next call resumes from it.
                output.flush().map_err(write_error)?;
                return Err(Error::DownloadStopped {
                    url: url.to_string(),
                    part: part.to_path_buf(),
                    received,
                    source,
                });
            }
        };
        if let Some(expected) = file.size
            && received + count as u64 > expected
        {
            drop(output);
            remove_part(part)?;
            return Err(Error::DownloadSize {
                url: url.to_string(),
                expected,
                found: received + count as u64,
                measurement: "the server sent at least",
            });
        }
        output.write_all(&buffer[..count]).map_err(write_error)?;
        received += count as u64;

        if progress(FetchEvent::Received {
            file,
            bytes: received,
        })
        .is_break()
        {
            output.flush().map_err(write_error)?;
            return Err(Error::Interrupted {
                url: url.to_string(),
                part: part.to_path_buf(),
                received,
            });
        }
    }

    // On disk before the rename, so that a crash cannot leave a short file under the name.
    output.sync_all().map_err(write_error)?;
    Ok(received)
}

/// Returns true when every member of the archive is in `dir` with its size, if known.
fn members_present(file: &RemoteFile, dir: &Path) -> bool {
    file.extract.iter().all(|member| {
        fs::metadata(dir.join(&member.name)).is_ok_and(|metadata| {
            metadata.is_file() && member.size.is_none_or(|size| size == metadata.len())
        })
    })
}

/// Unpacks the members of a verified `.tar.gz` into `dir` and returns how many were
/// written. Entries are matched by file name only, so no path from the archive is used.
fn extract_members(file: &RemoteFile, archive_path: &Path, dir: &Path) -> Result<usize, Error> {
    let archive_error = |reason: String| Error::InvalidDataset {
        path: archive_path.to_path_buf(),
        reason,
    };
    let input = File::open(archive_path).map_err(|source| Error::Read {
        path: archive_path.to_path_buf(),
        source,
    })?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(input)));
    let mut written = vec![false; file.extract.len()];

    let entries = archive
        .entries()
        .map_err(|error| archive_error(format!("cannot read the archive: {error}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|error| archive_error(format!("cannot read the archive: {error}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let entry_path = entry
            .path()
            .map_err(|error| archive_error(format!("invalid entry name: {error}")))?
            .into_owned();
        let Some(entry_name) = entry_path.file_name().and_then(|name| name.to_str()) else {
            continue;
        };
        let Some(index) = file
            .extract
            .iter()
            .position(|member| member.name == entry_name)
        else {
            continue;
        };
        let member = &file.extract[index];

        // Through a `.part`, like downloads, so a member is complete under its name.
        let target = dir.join(&member.name);
        let part = part_path(&target);
        let write_error = |source: io::Error| Error::Write {
            path: part.clone(),
            source,
        };
        let mut output = File::create(&part).map_err(write_error)?;
        let bytes = io::copy(&mut entry, &mut output).map_err(|error| {
            archive_error(format!(
                "cannot unpack {}: {error}; delete the archive and fetch again",
                entry_path.display()
            ))
        })?;
        output.sync_all().map_err(write_error)?;
        drop(output);
        if let Some(expected) = member.size
            && bytes != expected
        {
            remove_part(&part)?;
            return Err(archive_error(format!(
                "{} has {bytes} bytes, expected {expected}; delete the archive and fetch again",
                entry_path.display()
            )));
        }
        fs::rename(&part, &target).map_err(|source| Error::Write {
            path: target.clone(),
            source,
        })?;
        tracing::debug!(path = %target.display(), bytes, "extracted");
        written[index] = true;
    }

    let missing: Vec<&str> = file
        .extract
        .iter()
        .zip(&written)
        .filter(|(_, written)| !**written)
        .map(|(member, _)| member.name.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(archive_error(format!(
            "the archive does not contain {}",
            missing.join(", ")
        )));
    }
    Ok(file.extract.len())
}

/// Returns the MD5 of a file as 32 lowercase hex digits.
pub fn md5_of_file(path: &Path) -> Result<String, Error> {
    let read_error = |source: io::Error| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut input = File::open(path).map_err(read_error)?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let count = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(count) => count,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(read_error(source)),
        };
        hasher.update(&buffer[..count]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Returns the length of a file, or 0 when it does not exist.
fn file_len(path: &Path) -> Result<u64, Error> {
    match fs::metadata(path) {
        Ok(metadata) => Ok(metadata.len()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Empties a `.part` so that a download starts over.
fn truncate_part(part: &Path) -> Result<(), Error> {
    File::create(part).map(drop).map_err(|source| Error::Write {
        path: part.to_path_buf(),
        source,
    })
}

/// Removes a `.part`; one that is already gone is fine.
fn remove_part(part: &Path) -> Result<(), Error> {
    match fs::remove_file(part) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Write {
            path: part.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_known_text() {
        // RFC 1321, appendix A.5: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc.txt");
        fs::write(&path, b"abc").unwrap();
        assert_eq!(
            md5_of_file(&path).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
    }

    #[test]
    fn mirror_url_uses_dataset_folder() {
        let manifest = published(DatasetFormat::Mnist).unwrap();
        let file = &manifest.files[0];
        assert_eq!(
            file.url,
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz"
        );
        assert_eq!(file_url(&manifest, file, None), file.url);
        for base in ["http://127.0.0.1:8000", "http://127.0.0.1:8000/"] {
            assert_eq!(
                file_url(&manifest, file, Some(base)),
                "http://127.0.0.1:8000/mnist/train-images-idx3-ubyte.gz"
            );
        }
    }

    #[test]
    fn mirror_must_be_http_url() {
        assert!(check_mirror("http://127.0.0.1:8000/").is_ok());
        assert!(check_mirror("HTTPS://example.org/datasets").is_ok());
        for bad in [
            "127.0.0.1:8000",
            "ftp://host/",
            "http://",
            "https:///path",
            "",
        ] {
            let error = check_mirror(bad).unwrap_err().to_string();
            assert!(error.contains("--mirror"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn published_manifests_cover_reader_files() {
        let cifar = published(DatasetFormat::Cifar10).unwrap();
        assert_eq!(cifar.name, "cifar10");
        let members: Vec<&str> = cifar.files[0]
            .extract
            .iter()
            .map(|member| member.name.as_str())
            .collect();
        assert_eq!(
            members,
            [
                "data_batch_1.bin",
                "data_batch_2.bin",
                "data_batch_3.bin",
                "data_batch_4.bin",
                "data_batch_5.bin",
                "test_batch.bin",
                "batches.meta.txt",
            ]
        );
        // 10,000 records of 1 label byte + 3 x 32 x 32 pixel bytes = 30,730,000 bytes.
        assert_eq!(cifar.files[0].extract[0].size, Some(30_730_000));

        assert_eq!(
            published(DatasetFormat::FashionMnist).unwrap().files.len(),
            4
        );
        assert!(published(DatasetFormat::Folder).is_none());
    }

    #[test]
    fn content_range_start_parses_offset() {
        let response = ureq::http::Response::builder()
            .status(206)
            .header("Content-Range", "bytes 1000-1999/2000")
            .body(ureq::Body::builder().data(Vec::new()))
            .unwrap();
        assert_eq!(content_range_start(&response), Some(1000));
    }
}
