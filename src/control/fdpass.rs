//! Passing an open file with a request on the control socket.
//!
//! `kpbx cdr import FILE` opens the file itself, with its caller's rights,
//! and sends the descriptor with the first byte of the request frame
//! (`SCM_RIGHTS`). The daemon never opens a path a client names, so it
//! cannot be made to read what the caller could not (a confused deputy),
//! and it learns nothing about files the caller cannot see.
//!
//! The kernel attaches the descriptor to the first byte of the send; the
//! daemon reads that byte with [`recv_byte_and_file`] and everything after
//! it as usual.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Writes all of `bytes` to the socket, the descriptor `file` riding on
/// the first byte.
pub fn send_with_file(socket: impl AsFd, file: impl AsFd, bytes: &[u8]) -> std::io::Result<()> {
    let fds = [file.as_fd()];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other("no room for the descriptor"));
    }
    let mut sent = rustix::net::sendmsg(
        &socket,
        &[IoSlice::new(bytes)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    while sent < bytes.len() {
        let n = rustix::net::send(&socket, &bytes[sent..], SendFlags::NOSIGNAL)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

/// Reads at most one byte into `byte`, and the descriptor that came with
/// it if any. Returns how many bytes were read (0 at end of stream). More
/// descriptors than one, or a truncated control message, are refused; the
/// kernel closes what did not fit.
pub fn recv_byte_and_file(
    socket: impl AsFd,
    byte: &mut [u8; 1],
) -> std::io::Result<(usize, Option<OwnedFd>)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = rustix::net::recvmsg(
        &socket,
        &mut [IoSliceMut::new(byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut file = None;
    let mut extra = false;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for fd in fds {
                if file.is_none() {
                    file = Some(fd);
                } else {
                    extra = true; // dropped, so closed
                }
            }
        }
    }
    if extra || msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "more than one descriptor sent with a request",
        ));
    }
    Ok((msg.bytes, file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_file_rides_on_the_first_byte() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"hello").unwrap();
        f.rewind().unwrap();
        send_with_file(&a, &f, b"KPxyz").unwrap();
        drop(f);
        let mut byte = [0u8; 1];
        let (n, fd) = recv_byte_and_file(&b, &mut byte).unwrap();
        assert_eq!((n, &byte), (1, b"K"));
        let mut text = String::new();
        std::fs::File::from(fd.unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello");
        let mut rest = [0u8; 4];
        (&b).read_exact(&mut rest).unwrap();
        assert_eq!(&rest, b"Pxyz");
    }

    #[test]
    fn more_than_one_descriptor_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let (f, g) = (tempfile::tempfile().unwrap(), tempfile::tempfile().unwrap());
        let fds = [f.as_fd(), g.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        assert!(control.push(SendAncillaryMessage::ScmRights(&fds)));
        rustix::net::sendmsg(&a, &[IoSlice::new(b"KP")], &mut control, SendFlags::empty()).unwrap();
        let mut byte = [0u8; 1];
        let e = recv_byte_and_file(&b, &mut byte).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }

    #[test]
    fn plain_bytes_carry_no_file() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(b"KP").unwrap();
        let mut byte = [0u8; 1];
        let (n, fd) = recv_byte_and_file(&b, &mut byte).unwrap();
        assert_eq!(n, 1);
        assert!(fd.is_none());
        drop(a);
        let (n, _) = recv_byte_and_file(&b, &mut byte).unwrap();
        assert_eq!(n, 1);
        let (n, fd) = recv_byte_and_file(&b, &mut byte).unwrap();
        assert_eq!((n, fd.is_none()), (0, true));
    }
}
