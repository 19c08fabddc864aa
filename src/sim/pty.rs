//! The simulator on pseudo-terminals, for real clients (gammu, minicom, socat, atmate on a
//! "serial device"), with the device nodes, udev links and sysfs a real stick gets.
//!
//! [`serve_pty`] creates, under `DIR`:
//!
//! ```text
//! DIR/ttyUSB0 -> /dev/pts/N          if00 (DIAG: swallows everything, answers nothing)
//! DIR/ttyUSB1 -> /dev/pts/M          if01 (AT)
//! DIR/ttyUSB2 -> /dev/pts/K          if02 (AT; the data port with the drop-off quirk)
//! DIR/by-id/usb-ZTE_Incorporated_ZTE_WCDMA_Technologies_MSM_<serial>-if0N-port0 -> ../ttyUSBn
//! DIR/control                        UNIX socket, mode 0600, JSON lines (see `control`)
//! DIR/sys/class/tty/ttyUSBn -> ../../devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.N/ttyUSBn/tty/ttyUSBn
//! DIR/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/           the USB device
//!     idVendor "19d2"  idProduct "0016"  serial  manufacturer  product  busnum  devnum
//!     1-1:1.N/                                                  interface N
//!         bInterfaceNumber "0N"  bInterfaceClass/SubClass/Protocol "ff"
//!         ttyUSBn/tty/ttyUSBn/dev "188:n"
//!         ttyUSBn/tty/ttyUSBn/device -> ../../../ttyUSBn
//! ```
//!
//! This mirrors the kernel: `sys/class/tty/ttyUSB1/device` is the usb-serial port,
//! `device/..` the interface (`bInterfaceNumber`), `device/../..` the USB device (`idVendor`,
//! `idProduct`, `serial`). Every file holds its value and a newline, as sysfs does.
//!
//! On unplug the masters close (clients read EOF, then EIO on write), the `ttyUSB*` links,
//! the by-id links and the sysfs device vanish. On replug new PTYs appear as the next
//! numbers (ttyUSB3..5, then 6..8, …; `devnum` counts up too) and the by-id links are
//! re-pointed to them, as udev does.
//!
//! A client closing its end is handled like a real closed tty: while no process has the
//! slave open the master reads EIO and whatever the stick says is dropped (it would
//! otherwise wait in the pty buffer for the next client); a new open of the slave works.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::config::{Identity, SimConfig};
use super::control;
use super::{SimError, SimHandle};

/// Where one port is right now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PortPaths {
    /// Interface number.
    pub iface: u8,
    /// Kernel-style name, `ttyUSB1` (`ttyUSB4` after one replug).
    pub name: String,
    /// `DIR/<name>`, a symlink to the PTY slave: what a client opens.
    pub path: PathBuf,
    /// The PTY slave (`/dev/pts/N`).
    pub pts: PathBuf,
    /// The stable udev-style link (`DIR/by-id/usb-ZTE_…-if0N-port0`).
    pub by_id: PathBuf,
}

/// The USB device path inside the fake sysfs (a stick in port 1 of bus 1).
const USB_DEVICE: &str = "devices/pci0000:00/0000:00:14.0/usb1/1-1";

/// The by-id name udev gives interface `iface` (`$ID_BUS-$ID_SERIAL-if$ID_USB_INTERFACE_NUM-port0`,
/// with ID_SERIAL = manufacturer_product_serial and spaces/commas turned into `_`).
pub fn by_id_name(id: &Identity, iface: u8) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!(
        "usb-{}_{}_{}-if{iface:02}-port0",
        clean(&id.usb_manufacturer),
        clean(&id.usb_product_name),
        clean(&id.usb_serial)
    )
}

#[derive(Debug, Default)]
struct PtyState {
    ports: Vec<PortPaths>,
    generation: Option<u64>,
    bridges: Vec<JoinHandle<()>>,
}

/// A simulator serving PTYs under a folder. Stops (ports closed, links and socket removed)
/// on [`PtySim::shutdown`] or when dropped.
#[derive(Debug)]
pub struct PtySim {
    handle: SimHandle,
    dir: PathBuf,
    identity: Identity,
    state: Arc<Mutex<PtyState>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SimError {
    let context = context.into();
    move |source| SimError::Io { context, source }
}

fn nix_err(context: impl Into<String>) -> impl FnOnce(Errno) -> SimError {
    let context = context.into();
    move |e| SimError::Io {
        context,
        source: std::io::Error::from(e),
    }
}

/// Serve a simulated MF667 on PTYs under `dir` (created if missing), with its control
/// socket at `dir/control`. Needs a tokio runtime. The ports exist when this returns.
pub async fn serve_pty(dir: &Path, cfg: SimConfig) -> Result<PtySim, SimError> {
    cfg.validate().map_err(SimError::Invalid)?;
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let dir = std::fs::canonicalize(dir).map_err(io_err(format!("resolve {}", dir.display())))?;
    let control_path = dir.join("control");
    if control_path.exists() {
        if tokio::net::UnixStream::connect(&control_path).await.is_ok() {
            return Err(SimError::Invalid(format!(
                "a simulator already serves {} (its control socket answers)",
                dir.display()
            )));
        }
        // A stale socket from a simulator that was killed.
        std::fs::remove_file(&control_path)
            .map_err(io_err(format!("remove stale {}", control_path.display())))?;
    }
    clean_dir(&dir);
    let identity = cfg.identity.clone();
    let handle = SimHandle::spawn(cfg);
    let state = Arc::new(Mutex::new(PtyState::default()));
    let (stop, stop_rx) = watch::channel(false);

    let usb = *handle.usb().borrow();
    if usb.plugged {
        enumerate(&handle, &dir, &identity, &state, usb.generation)?;
    }

    let listener = control::bind(&control_path)?;
    let mut tasks = Vec::new();
    {
        let (h, d, id, st, rx) = (
            handle.clone(),
            dir.clone(),
            identity.clone(),
            Arc::clone(&state),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(follow_usb(h, d, id, st, rx)));
    }
    {
        let st = Arc::clone(&state);
        let ports = Arc::new(move || {
            let s = st.lock().unwrap_or_else(|p| p.into_inner());
            serde_json::to_value(&s.ports).unwrap_or_default()
        });
        let mut rx = stop_rx.clone();
        let stop_tx = stop.clone();
        let h = handle.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                while !*rx.borrow_and_update() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            };
            control::serve(listener, h, Some(ports), Some(stop_tx), shutdown).await;
        }));
    }
    Ok(PtySim {
        handle,
        dir,
        identity,
        state,
        stop,
        tasks,
    })
}

impl PtySim {
    /// The simulated stick.
    pub fn handle(&self) -> &SimHandle {
        &self.handle
    }

    /// The folder it serves.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The ports as they are now (empty while unplugged).
    pub fn ports(&self) -> Vec<PortPaths> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ports
            .clone()
    }

    /// `DIR/ttyUSBn` of interface `iface` now, if plugged.
    pub fn tty(&self, iface: u8) -> Option<PathBuf> {
        self.ports()
            .into_iter()
            .find(|p| p.iface == iface)
            .map(|p| p.path)
    }

    /// The stable by-id link of `iface` (exists while plugged).
    pub fn by_id(&self, iface: u8) -> PathBuf {
        self.dir
            .join("by-id")
            .join(by_id_name(&self.identity, iface))
    }

    /// The control socket.
    pub fn control_socket(&self) -> PathBuf {
        self.dir.join("control")
    }

    /// The fake sysfs root (point discovery's `/sys` here).
    pub fn sysfs(&self) -> PathBuf {
        self.dir.join("sys")
    }

    /// Resolves when something asked the simulator to stop (the control socket's `stop`).
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Stop serving: close every port, remove the links, the sysfs tree and the socket.
    pub async fn shutdown(mut self) {
        self.stop_now();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    fn stop_now(&mut self) {
        self.stop.send_replace(true);
        self.handle.stop_now();
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for b in s.bridges.drain(..) {
            b.abort();
        }
        s.ports.clear();
        drop(s);
        clean_dir(&self.dir);
        let _ = std::fs::remove_file(self.dir.join("control"));
    }
}

impl Drop for PtySim {
    fn drop(&mut self) {
        self.stop_now();
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Remove what an enumeration published, in the reverse order: by-id links, device
/// nodes, sysfs.
fn clean_dir(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir.join("by-id")) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("ttyUSB") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.join("sys"));
}

/// Follow the stick's USB state: tear down on unplug, enumerate anew on replug.
async fn follow_usb(
    handle: SimHandle,
    dir: PathBuf,
    identity: Identity,
    state: Arc<Mutex<PtyState>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut usb = handle.usb();
    loop {
        let now = *usb.borrow_and_update();
        let current = state.lock().unwrap_or_else(|p| p.into_inner()).generation;
        if !now.plugged && current.is_some() {
            teardown(&dir, &state);
        } else if now.plugged && current != Some(now.generation) {
            teardown(&dir, &state);
            if let Err(e) = enumerate(&handle, &dir, &identity, &state, now.generation) {
                tracing::warn!(error = %e, "simulator: could not publish the replugged ports");
            }
        }
        tokio::select! {
            r = usb.changed() => if r.is_err() { break },
            _ = stop.changed() => break,
        }
    }
}

fn teardown(dir: &Path, state: &Arc<Mutex<PtyState>>) {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    // The device closed its side; the bridges end by themselves. Abort any that linger
    // so the masters close and clients see the hang-up.
    for b in s.bridges.drain(..) {
        b.abort();
    }
    s.ports.clear();
    s.generation = None;
    drop(s);
    clean_dir(dir);
}

fn write_attr(path: &Path, value: &str) -> Result<(), SimError> {
    std::fs::write(path, format!("{value}\n")).map_err(io_err(format!("write {}", path.display())))
}

fn symlink(target: &Path, link: &Path) -> Result<(), SimError> {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).map_err(io_err(format!(
        "link {} -> {}",
        link.display(),
        target.display()
    )))
}

/// Publish enumeration `generation`: three PTYs, then (as the kernel and udev do, in this
/// order) the sysfs tree, the device nodes, the by-id links.
fn enumerate(
    handle: &SimHandle,
    dir: &Path,
    id: &Identity,
    state: &Arc<Mutex<PtyState>>,
    generation: u64,
) -> Result<(), SimError> {
    let mut bridges = Vec::new();
    let r = publish(handle, dir, id, generation, &mut bridges);
    match r {
        Ok(Some(ports)) => {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.ports = ports;
            s.generation = Some(generation);
            s.bridges = bridges;
            Ok(())
        }
        // Unplugged again while we were publishing: the follower catches up.
        Ok(None) => {
            bridges.iter().for_each(JoinHandle::abort);
            clean_dir(dir);
            Ok(())
        }
        Err(e) => {
            bridges.iter().for_each(JoinHandle::abort);
            clean_dir(dir);
            Err(e)
        }
    }
}

fn publish(
    handle: &SimHandle,
    dir: &Path,
    id: &Identity,
    generation: u64,
    bridges: &mut Vec<JoinHandle<()>>,
) -> Result<Option<Vec<PortPaths>>, SimError> {
    let names: Vec<(u8, u64, String)> = (0..3u8)
        .map(|iface| {
            let n = generation * 3 + u64::from(iface);
            (iface, n, format!("ttyUSB{n}"))
        })
        .collect();

    // 1. The PTYs, bridged to the device's ports.
    let mut pts_paths = Vec::new();
    for (iface, _, _) in &names {
        let (master, pts) = open_pty()?;
        let present = Arc::new(AtomicBool::new(false));
        let stream = match handle.open_port_for(*iface, Arc::clone(&present)) {
            Ok(s) => s,
            Err(SimError::Unplugged) => return Ok(None),
            Err(e) => return Err(e),
        };
        bridges.push(bridge(master, stream, present)?);
        pts_paths.push(pts);
    }

    // 2. sysfs: the USB device, its interfaces, the tty class entries.
    let sys = dir.join("sys");
    let usb_dev = sys.join(USB_DEVICE);
    std::fs::create_dir_all(&usb_dev).map_err(io_err(format!("create {}", usb_dev.display())))?;
    std::fs::create_dir_all(sys.join("class/tty")).map_err(io_err("create sys/class/tty"))?;
    write_attr(&usb_dev.join("idVendor"), &format!("{:04x}", id.usb_vendor))?;
    write_attr(
        &usb_dev.join("idProduct"),
        &format!("{:04x}", id.usb_product),
    )?;
    write_attr(&usb_dev.join("serial"), &id.usb_serial)?;
    write_attr(&usb_dev.join("manufacturer"), &id.usb_manufacturer)?;
    write_attr(&usb_dev.join("product"), &id.usb_product_name)?;
    write_attr(&usb_dev.join("busnum"), "1")?;
    // The kernel gives each enumeration a new device number.
    write_attr(&usb_dev.join("devnum"), &(2 + generation).to_string())?;
    for (iface, n, name) in &names {
        let intf = usb_dev.join(format!("1-1:1.{iface}"));
        let class_dir = intf.join(name).join("tty").join(name);
        std::fs::create_dir_all(&class_dir)
            .map_err(io_err(format!("create {}", class_dir.display())))?;
        write_attr(&intf.join("bInterfaceNumber"), &format!("{iface:02x}"))?;
        for a in [
            "bInterfaceClass",
            "bInterfaceSubClass",
            "bInterfaceProtocol",
        ] {
            write_attr(&intf.join(a), "ff")?;
        }
        write_attr(&class_dir.join("dev"), &format!("188:{n}"))?;
        symlink(&Path::new("../../..").join(name), &class_dir.join("device"))?;
        let rel = Path::new("../../")
            .join(USB_DEVICE)
            .join(format!("1-1:1.{iface}"))
            .join(name)
            .join("tty")
            .join(name);
        symlink(&rel, &sys.join("class/tty").join(name))?;
    }

    // 3. The device nodes.
    for ((_, _, name), pts) in names.iter().zip(&pts_paths) {
        symlink(pts, &dir.join(name))?;
    }

    // 4. udev's stable links.
    std::fs::create_dir_all(dir.join("by-id")).map_err(io_err("create by-id"))?;
    let mut ports = Vec::new();
    for ((iface, _, name), pts) in names.into_iter().zip(pts_paths) {
        let by_id = dir.join("by-id").join(by_id_name(id, iface));
        symlink(&Path::new("..").join(&name), &by_id)?;
        ports.push(PortPaths {
            iface,
            path: dir.join(&name),
            name,
            pts,
            by_id,
        });
    }
    Ok(Some(ports))
}

/// A raw-mode PTY pair: the master (non-blocking) and the slave's path. The slave fd is
/// closed again: a real ttyUSB is closed until a client opens it (raw settings persist).
fn open_pty() -> Result<(OwnedFd, PathBuf), SimError> {
    let pair = nix::pty::openpty(None, None).map_err(nix_err("openpty"))?;
    let mut t = tcgetattr(pair.slave.as_fd()).map_err(nix_err("tcgetattr"))?;
    cfmakeraw(&mut t);
    tcsetattr(pair.slave.as_fd(), SetArg::TCSANOW, &t).map_err(nix_err("tcsetattr"))?;
    let pts = nix::unistd::ttyname(pair.slave.as_fd()).map_err(nix_err("ttyname"))?;
    let flags = fcntl(pair.master.as_fd(), FcntlArg::F_GETFL).map_err(nix_err("fcntl"))?;
    fcntl(
        pair.master.as_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(nix_err("fcntl O_NONBLOCK"))?;
    Ok((pair.master, pts))
}

/// True when no process has the slave open (the master polls POLLHUP).
fn client_absent(master: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

/// How often to look for a client while nobody has the slave open. A PTY master reports
/// POLLHUP as long as that lasts, so there is nothing to wait on: we poll.
const NO_CLIENT_POLL: Duration = Duration::from_millis(50);

/// Give up writing to a client that does not read for this long (its bytes are lost, as
/// when a real stick's buffer overflows).
const STALLED_CLIENT: Duration = Duration::from_secs(5);

/// Sets the flag when dropped, so the reader thread ends with the bridge task.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Shuttle bytes between a PTY master and a device port until the device closes the port.
///
/// Reading runs on a thread with `poll()`: tokio's readiness for the master stays
/// "closed" forever after the first hang-up (no client yet), which would spin. Writing is
/// async; while no client has the slave open the stick's bytes are dropped.
fn bridge(
    master: OwnedFd,
    port: DuplexStream,
    present: Arc<AtomicBool>,
) -> Result<JoinHandle<()>, SimError> {
    let master = Arc::new(master);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    {
        let master = Arc::clone(&master);
        let stop = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("atmate-sim-pty".into())
            .spawn(move || read_master(&master, &stop, &present, &tx))
            .map_err(io_err("start the PTY reader thread"))?;
    }
    Ok(tokio::spawn(async move {
        let _stop = StopOnDrop(stop);
        let (mut from_dev, mut to_dev) = tokio::io::split(port);
        let to_device = async move {
            while let Some(bytes) = rx.recv().await {
                if to_dev.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        };
        let from_device = async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match from_dev.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                write_master(&master, &buf[..n]).await;
            }
        };
        tokio::select! {
            _ = to_device => {},
            _ = from_device => {},
        }
    }))
}

/// Read what the client writes; keep `present` up to date (POLLHUP = nobody has the slave open).
fn read_master(
    master: &OwnedFd,
    stop: &AtomicBool,
    present: &AtomicBool,
    tx: &tokio::sync::mpsc::Sender<Vec<u8>>,
) {
    let mut buf = [0u8; 4096];
    let timeout = PollTimeout::from(100u16);
    while !stop.load(Ordering::SeqCst) {
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => {
                present.store(true, Ordering::SeqCst);
                continue;
            }
            Err(Errno::EINTR) => continue,
            Ok(_) => {}
            Err(_) => return,
        }
        let ev = fds[0].revents().unwrap_or(PollFlags::empty());
        present.store(!ev.contains(PollFlags::POLLHUP), Ordering::SeqCst);
        if ev.contains(PollFlags::POLLIN) {
            match nix::unistd::read(master.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Ok(_) | Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                Err(Errno::EIO) => std::thread::sleep(NO_CLIENT_POLL),
                Err(_) => return,
            }
        } else if ev.contains(PollFlags::POLLNVAL) {
            return;
        } else if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR) {
            // No client: look again shortly.
            std::thread::sleep(NO_CLIENT_POLL);
        }
    }
}

async fn write_master(master: &OwnedFd, mut bytes: &[u8]) {
    let mut stalled = Duration::ZERO;
    while !bytes.is_empty() {
        // Nobody has the port open: the bytes are lost, as on a closed ttyUSB.
        if client_absent(master) {
            return;
        }
        match nix::unistd::write(master.as_fd(), bytes) {
            Ok(k) => {
                bytes = &bytes[k..];
                stalled = Duration::ZERO;
            }
            Err(Errno::EAGAIN) => {
                // The client is not reading and the pty buffer is full.
                if stalled >= STALLED_CLIENT {
                    return;
                }
                let pause = Duration::from_millis(5);
                tokio::time::sleep(pause).await;
                stalled += pause;
            }
            Err(Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_id_name_follows_udev() {
        assert_eq!(
            by_id_name(&Identity::default(), 1),
            "usb-ZTE_Incorporated_ZTE_WCDMA_Technologies_MSM_MF6670ZTED010000-if01-port0"
        );
    }
}
