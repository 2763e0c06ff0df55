//! [`NetSys`] on the real kernel: sysfs for discovery, `SIOC*` ioctls on an `AF_INET`
//! datagram socket for changes (IPv4 is all the node config holds; no netlink library
//! needed), procfs for forwarding.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use kubelab_nodeconfig::parse_mac;

use super::net::{NetOp, NetSys};

/// The guest kernel's network configuration interface.
pub struct Ioctl {
    socket: OwnedFd,
}

impl Ioctl {
    /// Opens the socket the ioctls go through.
    pub fn new() -> Result<Self, super::Error> {
        use super::Context;
        let socket = rustix::net::socket(
            rustix::net::AddressFamily::INET,
            rustix::net::SocketType::DGRAM,
            None,
        )
        .ctx(|| "opening an AF_INET socket for interface ioctls".into())?;
        Ok(Self { socket })
    }

    fn ioctl<T>(&self, request: libc::Ioctl, arg: &mut T) -> std::io::Result<()> {
        // SAFETY: `arg` is a valid, exclusively borrowed struct of the type `request` expects
        // (ifreq or rtentry), and the socket fd is open for the lifetime of `self`.
        let rc = unsafe { libc::ioctl(self.socket.as_raw_fd(), request, arg as *mut T) };
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes().take(15)) {
        *dst = src as libc::c_char;
    }
    req
}

fn sockaddr(addr: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from(addr).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr have the same size; the kernel reads it as
    // sockaddr_in because sa_family is AF_INET.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

impl NetSys for Ioctl {
    fn links(&mut self) -> std::io::Result<Vec<(String, [u8; 6])>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir("/sys/class/net")? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path().join("address")).unwrap_or_default();
            if let Some(mac) = parse_mac(text.trim()) {
                out.push((name, mac));
            }
        }
        out.sort();
        Ok(out)
    }

    fn apply(&mut self, op: &NetOp) -> std::io::Result<()> {
        match op {
            NetOp::Rename { from, to } => {
                let mut req = ifreq(from);
                // SAFETY: the union is all zeros; writing bytes of its `ifru_newname` arm
                // (a c_char array) is valid whatever arm was used before.
                for (dst, src) in
                    unsafe { req.ifr_ifru.ifru_newname.iter_mut() }.zip(to.bytes().take(15))
                {
                    *dst = src as libc::c_char;
                }
                self.ioctl(libc::SIOCSIFNAME as libc::Ioctl, &mut req)
            }
            NetOp::Address { link, address } => {
                let mut req = ifreq(link);
                req.ifr_ifru.ifru_addr = sockaddr(address.ip());
                self.ioctl(libc::SIOCSIFADDR as libc::Ioctl, &mut req)?;
                let mut req = ifreq(link);
                req.ifr_ifru.ifru_netmask = sockaddr(address.mask());
                self.ioctl(libc::SIOCSIFNETMASK as libc::Ioctl, &mut req)
            }
            NetOp::Up { link } => {
                let mut req = ifreq(link);
                self.ioctl(libc::SIOCGIFFLAGS as libc::Ioctl, &mut req)?;
                // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
                unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
                self.ioctl(libc::SIOCSIFFLAGS as libc::Ioctl, &mut req)
            }
            NetOp::Route { destination, via } => {
                // SAFETY: rtentry is plain old data; all-zero is a valid value.
                let mut rt: libc::rtentry = unsafe { std::mem::zeroed() };
                rt.rt_dst = sockaddr(destination.network());
                rt.rt_genmask = sockaddr(destination.mask());
                rt.rt_gateway = sockaddr(*via);
                rt.rt_flags = libc::RTF_UP | libc::RTF_GATEWAY;
                self.ioctl(libc::SIOCADDRT as libc::Ioctl, &mut rt)
            }
        }
    }

    fn set_hostname(&mut self, name: &str) -> std::io::Result<()> {
        rustix::system::sethostname(name.as_bytes())?;
        std::fs::write("/etc/hostname", format!("{name}\n"))?;
        let hosts = format!("127.0.0.1\tlocalhost\n127.0.1.1\t{name}\n");
        std::fs::write("/etc/hosts", hosts)
    }

    fn set_ip_forward(&mut self, on: bool) -> std::io::Result<()> {
        std::fs::write(
            "/proc/sys/net/ipv4/ip_forward",
            if on { "1\n" } else { "0\n" },
        )
    }
}
