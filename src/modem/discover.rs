//! Finding a modem's AT port again after USB re-enumeration (ttyUSB2 → ttyUSB3).
//!
//! `auto` scans `<sysfs_root>/class/tty/*`: for each tty, `device/..` is the USB
//! interface (`bInterfaceNumber`) and `device/../..` the USB device (`idVendor`,
//! `idProduct`, `serial`), as the kernel lays it out. The device node is then
//! `<dev_root>/<ttyname>`. Both roots are configurable so tests can point them at the
//! simulator's folder, where it re-creates ports under new names as the kernel would.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::ModemError;

/// What to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// USB vendor id, lower-case hex (`19d2` = ZTE).
    pub vendor_id: String,
    /// Accepted product ids (empty = any).
    pub product_ids: Vec<String>,
    /// Preferred interface numbers, best first (MF667: if01 is the AT port that carries
    /// no data; if02 is the PPP port, and traffic there makes the stick drop off USB).
    pub interfaces: Vec<u8>,
    /// USB serial number, to pick one of several identical sticks.
    pub serial: Option<String>,
    /// Usually `/sys`.
    pub sysfs_root: PathBuf,
    /// Usually `/dev`.
    pub dev_root: PathBuf,
}

impl Default for Discovery {
    fn default() -> Self {
        Discovery {
            vendor_id: "19d2".into(),
            product_ids: Vec::new(),
            interfaces: vec![1, 2],
            serial: None,
            sysfs_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
        }
    }
}

impl Discovery {
    /// `auto (19d2, if01)` for logs.
    pub fn describe(&self) -> String {
        let ifs: Vec<String> = self
            .interfaces
            .iter()
            .map(|i| format!("if{i:02}"))
            .collect();
        format!("auto ({}, {})", self.vendor_id, ifs.join("/"))
    }
}

/// One tty found under sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// `ttyUSB3`.
    pub name: String,
    /// USB vendor id.
    pub vendor_id: String,
    /// USB product id.
    pub product_id: String,
    /// Interface number.
    pub interface: u8,
    /// USB serial, if any.
    pub serial: Option<String>,
}

fn read_attr(dir: &Path, name: &str) -> Option<String> {
    fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_ascii_lowercase())
}

/// Every USB tty under `<sysfs_root>/class/tty`.
pub fn candidates(sysfs_root: &Path) -> Vec<Candidate> {
    let mut out = Vec::new();
    let Ok(rd) = fs::read_dir(sysfs_root.join("class/tty")) else {
        return out;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // canonicalize follows the `device` symlink, so `..` is the physical parent,
        // as on a real sysfs.
        let Ok(device) = fs::canonicalize(entry.path().join("device")) else {
            continue;
        };
        let Some(iface_dir) = device.parent() else {
            continue;
        };
        let Some(usb_dir) = iface_dir.parent() else {
            continue;
        };
        let (Some(iface), Some(vendor), Some(product)) = (
            read_attr(iface_dir, "bInterfaceNumber"),
            read_attr(usb_dir, "idVendor"),
            read_attr(usb_dir, "idProduct"),
        ) else {
            continue;
        };
        let Ok(interface) = u8::from_str_radix(&iface, 16) else {
            continue;
        };
        out.push(Candidate {
            name,
            vendor_id: vendor,
            product_id: product,
            interface,
            serial: read_attr(usb_dir, "serial"),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Pick the device node for `d`, or say what was seen instead.
pub fn find(d: &Discovery) -> Result<PathBuf, ModemError> {
    find_port(d).map(|(node, _)| node)
}

/// Like [`find`], with the sysfs facts of the port found (its interface number, for
/// the log and the if02 warning).
pub fn find_port(d: &Discovery) -> Result<(PathBuf, Candidate), ModemError> {
    let all = candidates(&d.sysfs_root);
    let matching: Vec<&Candidate> = all
        .iter()
        .filter(|c| c.vendor_id.eq_ignore_ascii_case(&d.vendor_id))
        .filter(|c| {
            d.product_ids.is_empty()
                || d.product_ids
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&c.product_id))
        })
        .filter(|c| match &d.serial {
            Some(s) => c
                .serial
                .as_deref()
                .is_some_and(|cs| cs.eq_ignore_ascii_case(s)),
            None => true,
        })
        .collect();
    for want in &d.interfaces {
        if let Some(c) = matching.iter().find(|c| c.interface == *want) {
            let node = d.dev_root.join(&c.name);
            if node.exists() {
                return Ok((node, (*c).clone()));
            }
        }
    }
    let seen: Vec<String> = all
        .iter()
        .map(|c| {
            format!(
                "{} ({}:{} if{:02})",
                c.name, c.vendor_id, c.product_id, c.interface
            )
        })
        .collect();
    Err(ModemError::Open {
        device: d.describe(),
        reason: if seen.is_empty() {
            format!(
                "no USB serial ports under {}",
                d.sysfs_root.join("class/tty").display()
            )
        } else {
            format!("no matching port; seen: {}", seen.join(", "))
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_port(root: &Path, tty: &str, usb: &str, iface: u8, product: &str) {
        let usb_dir = root.join("devices").join(usb);
        let if_dir = usb_dir.join(format!("{usb}:1.{iface}"));
        let dev_dir = if_dir.join(tty);
        fs::create_dir_all(&dev_dir).unwrap();
        fs::write(usb_dir.join("idVendor"), "19d2\n").unwrap();
        fs::write(usb_dir.join("idProduct"), format!("{product}\n")).unwrap();
        fs::write(usb_dir.join("serial"), "MF667ABC\n").unwrap();
        fs::write(if_dir.join("bInterfaceNumber"), format!("{iface:02}\n")).unwrap();
        let class = root.join("class/tty").join(tty);
        fs::create_dir_all(&class).unwrap();
        std::os::unix::fs::symlink(&dev_dir, class.join("device")).unwrap();
    }

    #[test]
    fn finds_if01_under_its_current_name() {
        let t = tempfile::tempdir().unwrap();
        let sys = t.path().join("sys");
        let dev = t.path().join("dev");
        fs::create_dir_all(&dev).unwrap();
        for (i, tty) in ["ttyUSB3", "ttyUSB4", "ttyUSB5"].iter().enumerate() {
            fake_port(&sys, tty, "1-1", i as u8, "0016");
            fs::write(dev.join(tty), "").unwrap();
        }
        let d = Discovery {
            sysfs_root: sys.clone(),
            dev_root: dev.clone(),
            ..Discovery::default()
        };
        assert_eq!(find(&d).unwrap(), dev.join("ttyUSB4"));
        // Product filter that does not match: a clear error listing what was seen.
        let d2 = Discovery {
            product_ids: vec!["1405".into()],
            ..d
        };
        let e = find(&d2).unwrap_err().to_string();
        assert!(e.contains("ttyUSB4 (19d2:0016 if01)"), "{e}");
    }

    #[test]
    fn empty_sysfs_is_a_clear_error() {
        let t = tempfile::tempdir().unwrap();
        let d = Discovery {
            sysfs_root: t.path().into(),
            ..Discovery::default()
        };
        assert!(find(&d)
            .unwrap_err()
            .to_string()
            .contains("no USB serial ports"));
    }
}
