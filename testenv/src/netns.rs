//! A network namespace with nothing but loopback, for tests that point the browser (or anything
//! else) at private, link-local or public addresses to prove they are refused: even when a guard
//! has a hole, nothing can leave the machine.
//!
//! A network namespace belongs to a thread, not to a process. [`enter`] moves the calling thread
//! into the process's one loopback-only namespace (made on first use); every socket the thread
//! opens afterwards, every thread it spawns and every child process it starts (moto, the agent,
//! Chromium, podman and its containers with `--network host`) lives there too. Each test calls it
//! first, because the test harness runs every test on a thread of its own; an async test enters
//! before it builds its runtime (`#[tokio::test]` starts its worker threads before the body runs,
//! outside the namespace).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot make a network namespace ({0}); the tests that aim at refused addresses need root (or CAP_SYS_ADMIN)")]
    Unshare(String),
    #[error("cannot bring up loopback in the new namespace: {0} (iproute2 provides `ip`; scripts/system-packages.sh installs it)")]
    Loopback(String),
    #[error("cannot enter the loopback-only namespace: {0}")]
    Enter(String),
}

static NAMESPACE: OnceLock<Result<File, NetnsError>> = OnceLock::new();

/// Moves the calling thread into the loopback-only namespace.
pub fn enter() -> Result<(), NetnsError> {
    let ns = NAMESPACE
        .get_or_init(create)
        .as_ref()
        .map_err(Clone::clone)?;
    // SAFETY: setns on a namespace file descriptor we own; it changes only this thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NetnsError::Enter(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    Ok(())
}

/// [`enter`], panicking with its message: for tests.
pub fn enter_or_panic() {
    if let Err(e) = enter() {
        panic!("{e}");
    }
}

/// The interfaces the calling thread sees (`lo` alone inside the namespace).
pub fn interfaces() -> Vec<String> {
    std::fs::read_to_string("/proc/thread-self/net/dev")
        .unwrap_or_default()
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_string())
        .collect()
}

/// Makes the namespace on a thread of its own (so no other thread moves), brings loopback up
/// and keeps a handle to it.
fn create() -> Result<File, NetnsError> {
    std::thread::spawn(|| {
        // SAFETY: unshare on this short-lived thread only; it changes this thread's namespace.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            return Err(NetnsError::Unshare(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        // A child inherits the namespace of the thread that starts it.
        let out = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .output()
            .map_err(|e| NetnsError::Loopback(e.to_string()))?;
        if !out.status.success() {
            return Err(NetnsError::Loopback(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        File::open("/proc/thread-self/ns/net").map_err(|e| NetnsError::Unshare(e.to_string()))
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError::Unshare("the namespace thread panicked".into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_there_is_only_loopback_and_it_works() {
        enter_or_panic();
        assert_eq!(interfaces(), vec!["lo".to_string()]);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(std::net::TcpStream::connect(listener.local_addr().unwrap()).is_ok());
        // No route anywhere else: the connect fails at once instead of leaving the machine.
        let err = std::net::TcpStream::connect_timeout(
            &"192.0.2.1:80".parse().unwrap(),
            std::time::Duration::from_secs(2),
        )
        .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH), "{err}");
        // Threads started from here are inside too.
        let inner = std::thread::spawn(interfaces).join().unwrap();
        assert_eq!(inner, vec!["lo".to_string()]);
    }
}
