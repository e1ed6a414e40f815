//! Which addresses a merchant webhook may never reach: everything that is not a public unicast
//! address (private, loopback, link-local and cloud metadata, carrier-grade NAT, documentation,
//! reserved, multicast), IPv4 addresses hidden inside IPv6 forms included. Used when a URL is
//! registered (IP-literal hosts) and at send time, after DNS ([`super::target`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether we must never send a webhook to `ip`: anything that is not a public unicast address.
///
/// IPv4 lists the special-purpose ranges (everything else is public). IPv6 first unwraps the
/// forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) and checks that address,
/// then allows only global unicast `2000::/3` minus its special blocks: an allow-list, because
/// the IPv6 space outside `2000::/3` holds nothing a merchant may legitimately use.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network" 0.0.0.0/8, incl. the unspecified 0.0.0.0
        || a == 10 // private
        || (a == 100 && (64..=127).contains(&b)) // carrier-grade NAT 100.64/10 (Alibaba metadata 100.100.100.200)
        || a == 127 // loopback
        || (a == 169 && b == 254) // link-local, incl. the cloud metadata 169.254.169.254
        || (a == 172 && (16..=31).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || (a == 192 && b == 0 && c == 2) // documentation TEST-NET-1
        || (a == 192 && b == 168) // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || (a == 198 && b == 51 && c == 100) // documentation TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // documentation TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast 255.255.255.255
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if let Some(embedded) = embedded_v4(ip) {
        return is_forbidden_v4(embedded);
    }
    let s = ip.segments();
    let global_unicast = (s[0] & 0xe000) == 0x2000; // 2000::/3
    !global_unicast
        || (s[0] == 0x2001 && s[1] == 0x0000) // Teredo 2001::/32 (hides an IPv4 address)
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0x0000) // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020) // ORCHIDv2 2001:20::/28
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010) // ORCHID 2001:10::/28
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
}

/// The IPv4 address inside an IPv6 address that stands for one: IPv4-mapped `::ffff:0:0/96`,
/// IPv4-compatible `::/96`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16`. A connection to such an
/// address can end up at the embedded IPv4 address, so that address is what gets checked.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let low = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forbidden_ranges() {
        let table = [
            // IPv4
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "this network 0/8"),
            ("10.0.0.1", "private 10/8"),
            ("10.255.255.255", "private 10/8 top"),
            ("100.64.0.1", "CGNAT 100.64/10"),
            ("100.127.255.255", "CGNAT top"),
            ("100.100.100.200", "Alibaba metadata (CGNAT)"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback /8"),
            ("169.254.0.1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("172.16.0.1", "private 172.16/12"),
            ("172.31.255.255", "private 172.16/12 top"),
            ("192.0.0.8", "IETF protocol assignments"),
            ("192.0.2.1", "TEST-NET-1"),
            ("192.168.1.1", "private 192.168/16"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking top"),
            ("198.51.100.7", "TEST-NET-2"),
            ("203.0.113.9", "TEST-NET-3"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast SSDP"),
            ("240.0.0.1", "reserved 240/4"),
            ("255.255.255.255", "broadcast"),
            // IPv6
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local top"),
            ("fec0::1", "site-local (deprecated)"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local fd"),
            ("fd00:ec2::254", "AWS IPv6 metadata"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation 3fff::/20"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("2001:10::1", "ORCHID"),
            ("2001:20::1", "ORCHIDv2"),
            ("100::1", "discard-only"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
            ("::ffff:10.0.0.1", "IPv4-mapped private"),
            ("::ffff:169.254.169.254", "IPv4-mapped metadata"),
            ("::127.0.0.1", "IPv4-compatible loopback"),
            ("::10.1.2.3", "IPv4-compatible private"),
            ("64:ff9b::10.0.0.1", "NAT64 private"),
            ("64:ff9b::a9fe:a9fe", "NAT64 metadata"),
            ("2002:a9fe:a9fe::1", "6to4 of metadata"),
            ("2002:7f00:1::1", "6to4 of loopback"),
        ];
        for (address, range) in table {
            assert!(is_forbidden(ip(address)), "{address} ({range}) must be forbidden");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let table = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255", // just below CGNAT
            "100.128.0.1",    // just above CGNAT
            "172.15.255.255", // just below 172.16/12
            "172.32.0.1",     // just above
            "169.253.1.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ];
        for address in table {
            assert!(!is_forbidden(ip(address)), "{address} must be allowed");
        }
    }
}
