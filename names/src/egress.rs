//! The egress policy: which destination addresses the browser may reach, and a webhook delivery.
//! Pure functions; the agent's proxy applies them to every connection after resolving the name
//! itself, so DNS answers and redirects cannot route around them, and the webhook function to
//! every address a destination resolves to, at send time.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Address ranges no job may reach, with the reason a refusal gives. IPv4-mapped, NAT64 and 6to4
/// IPv6 addresses are checked by the IPv4 address they embed.
const BLOCKED_V4: &[(&str, &str)] = &[
    ("0.0.0.0/8", "this-network"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    (
        "169.254.0.0/16",
        "link-local (incl. instance and task metadata)",
    ),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved and broadcast"),
];

const BLOCKED_V6: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignments (incl. Teredo)"),
    ("2001:db8::/32", "documentation"),
    (
        "fc00::/7",
        "unique local (incl. the EC2 IPv6 metadata endpoint)",
    ),
    ("fe80::/10", "link-local"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
];

/// Why an address is special, or `None` for a public unicast address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    let table = if ip.is_ipv4() { BLOCKED_V4 } else { BLOCKED_V6 };
    table
        .iter()
        .find(|(net, _)| Net::parse(net).is_some_and(|n| n.contains(ip)))
        .map(|(_, why)| *why)
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-translated
/// (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, all of `::/96` but `::` and `::1`), NAT64
/// (`64:ff9b::/96`) or 6to4 (`2002::/16`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let low = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(low),
        // `::` and `::1` stay IPv6 so they are named as such.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => Some(low),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

/// Whether an address is link-local (the instance and task metadata endpoints live there),
/// directly or embedded in an IPv6 address: never reachable, whatever the allow-list says.
pub fn is_link_local(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    ["169.254.0.0/16", "fe80::/10"].iter().any(|n| Net::parse(n).is_some_and(|n| n.contains(ip)))
}

/// The ports the browser may connect to unless an allow-list entry names another.
pub const DEFAULT_PORTS: [u16; 2] = [80, 443];

/// One allow-list entry: a host name or a network, optionally pinned to one port (an origin).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Allowed {
    Host(String, Option<u16>),
    Net(Net, Option<u16>),
}

/// What the browser may reach: public addresses on the allowed ports, plus what the allow-list
/// (`AGENT_EGRESS_ALLOW`, tests and local mode only) names. Link-local addresses never.
#[derive(Clone, Debug)]
pub struct EgressPolicy {
    allowed: Vec<Allowed>,
    /// Empty: any port.
    ports: Vec<u16>,
    /// Empty: any host; else only these domains and their subdomains (a computer-use job's
    /// `allowed_domains`, plus the hosts the agent itself must reach, `also_host`).
    domains: Vec<String>,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        EgressPolicy { allowed: Vec::new(), ports: DEFAULT_PORTS.to_vec(), domains: Vec::new() }
    }
}

impl EgressPolicy {
    /// Parses a comma-separated allow-list of host names, IP addresses and CIDR blocks, each
    /// optionally with `:port` (`127.0.0.1:8081`, `[::1]:8081`, `fixture.test:8081`).
    pub fn parse(s: &str) -> Result<EgressPolicy, String> {
        let mut policy = EgressPolicy::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            policy.allowed.push(parse_entry(item)?);
        }
        Ok(policy)
    }

    /// The ports allowed for destinations the allow-list does not pin (`AGENT_EGRESS_PORTS`).
    pub fn with_ports(mut self, s: &str) -> Result<EgressPolicy, String> {
        let ports: Result<Vec<u16>, String> = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| format!("`{p}` is not a port")))
            .collect();
        let ports = ports?;
        if ports.is_empty() {
            return Err("no port is allowed".into());
        }
        self.ports = ports;
        Ok(self)
    }

    /// Any port of an allowed address (webhook endpoints listen where their owners choose).
    pub fn with_any_port(mut self) -> EgressPolicy {
        self.ports.clear();
        self
    }

    /// Only `domains` and their subdomains (none: any host), by the names the browser uses.
    pub fn within_domains(mut self, domains: &[String]) -> EgressPolicy {
        self.domains = domains.to_vec();
        self
    }

    /// `host` too, whatever the domains (the model's endpoint, which the agent itself calls).
    pub fn also_host(mut self, host: &str) -> EgressPolicy {
        if !self.domains.is_empty() {
            self.domains.push(host.to_ascii_lowercase());
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.allowed.is_empty()
    }

    /// `Ok` when `host` (as the browser named it) may be reached at `ip`:`port`; otherwise why not.
    pub fn check(&self, host: &str, ip: IpAddr, port: u16) -> Result<(), String> {
        if is_link_local(ip) {
            return Err(format!("{ip} is link-local (incl. instance and task metadata)"));
        }
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        if !crate::goal::allows(&self.domains, &host) {
            return Err(format!("{host} is not within the job's allowed_domains ({})", self.domains.join(", ")));
        }
        // Every entry that names this destination counts, in any order: it is allowed when one of
        // them allows it (`127.0.0.1:8081` and `127.0.0.1:3000` both stand).
        let ports_listed: Vec<Option<u16>> = self
            .allowed
            .iter()
            .filter_map(|a| match a {
                Allowed::Host(h, p) if *h == host => Some(*p),
                Allowed::Net(n, p) if n.contains(ip) => Some(*p),
                _ => None,
            })
            .collect();
        if ports_listed.contains(&Some(port)) {
            return Ok(());
        }
        if ports_listed.is_empty() {
            if let Some(why) = special_range(ip) {
                return Err(format!("{ip} is {why}"));
            }
        } else if !ports_listed.contains(&None) {
            // Listed, but only on other ports.
            let ports: Vec<String> = ports_listed.iter().flatten().map(u16::to_string).collect();
            return Err(format!("{ip} is allowed on port {} only, not {port}", ports.join(", ")));
        }
        if self.ports.is_empty() || self.ports.contains(&port) {
            Ok(())
        } else {
            let ports: Vec<String> = self.ports.iter().map(u16::to_string).collect();
            Err(format!("port {port} is not allowed (only {})", ports.join(", ")))
        }
    }
}

/// The forms an allow-list entry takes, for error messages.
pub const ENTRY_FORMS: &str = "a host name, an IP address or a CIDR block, each with an optional :port \
     (`127.0.0.1:3000`, `fixture.test:8081`, `10.0.0.0/24`, `[::1]:9000`)";

fn parse_entry(item: &str) -> Result<Allowed, String> {
    if let Some((scheme, rest)) = item.split_once("://") {
        // A URL where an origin is meant: say which origin.
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let origin = match (host_port.rsplit_once(':'), scheme.to_ascii_lowercase().as_str()) {
            (Some((_, p)), _) if p.parse::<u16>().is_ok() => host_port.to_string(),
            (_, "https") => format!("{host_port}:443"),
            _ => format!("{host_port}:80"),
        };
        return Err(format!("`{item}` is a URL; give its origin, `{origin}` (an entry is {ENTRY_FORMS})"));
    }
    let bad = || format!("`{item}` is not {ENTRY_FORMS}");
    if let Some(net) = Net::parse(item) {
        return Ok(Allowed::Net(net, None));
    }
    let (base, port) = match item.rsplit_once(':') {
        Some((b, p)) if !b.is_empty() => (b, Some(p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad)?)),
        _ => (item, None),
    };
    if let Some(net) = Net::parse(base) {
        return Ok(Allowed::Net(net, port));
    }
    if base.is_empty() || base.contains('/') || base.contains(':') || base.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok(Allowed::Host(base.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses_table() {
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1", true),
            ("127.255.0.9", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("169.254.170.2", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("224.0.0.1", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("93.184.216.34", false),
            ("::1", true),
            ("::", true),
            ("fe80::1", true),
            ("fd00:ec2::254", true),
            ("fc00::1", true),
            ("ff02::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.170.2", true),
            ("::ffff:8.8.8.8", false),
            ("::ffff:0:169.254.170.2", true),
            ("::169.254.170.2", true),
            ("::a9fe:aa02", true),
            ("64:ff9b:1::a9fe:aa02", true),
            ("64:ff9b::808:808", false),
            ("64:ff9b::a00:1", true),
            ("2002:a00:1::1", true),
            ("2002:808:808::1", false),
            ("2001:db8::1", true),
            ("2606:4700:4700::1111", false),
        ];
        for (ip, blocked) in cases {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(special_range(addr).is_some(), *blocked, "{ip}");
        }
    }

    #[test]
    fn allow_list_by_net_host_and_origin() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let p = EgressPolicy::parse("127.0.0.1:8081, fixture.test ,10.0.0.0/24, [::1]:9000").unwrap();
        assert!(p.check("127.0.0.1", ip("127.0.0.1"), 8081).is_ok());
        assert!(p.check("127.0.0.1", ip("127.0.0.1"), 8082).unwrap_err().contains("port 8081 only"));
        assert!(p.check("x", ip("127.0.0.2"), 8081).is_err());
        assert!(p.check("::1", ip("::1"), 9000).is_ok());
        assert!(p.check("FIXTURE.test", ip("192.168.0.5"), 443).is_ok());
        assert!(p.check("fixture.test", ip("192.168.0.5"), 22).unwrap_err().contains("port 22"));
        assert!(p.check("x", ip("10.0.0.200"), 80).is_ok());
        assert!(p.check("x", ip("10.0.1.1"), 80).is_err());
        assert!(p.check("x", ip("1.1.1.1"), 443).is_ok());
        assert!(p.check("x", ip("1.1.1.1"), 8443).unwrap_err().contains("port 8443 is not allowed (only 80, 443)"));
        assert!(EgressPolicy::parse("10.0.0.0/33").is_err());
        assert!(EgressPolicy::parse("host:0").is_err());
        assert!(EgressPolicy::parse("a b").is_err());
        assert!(EgressPolicy::parse("").unwrap().is_empty());
    }

    #[test]
    fn any_entry_that_allows_a_destination_allows_it_in_either_order() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for list in ["127.0.0.1:8081,127.0.0.1:3000", "127.0.0.1:3000,127.0.0.1:8081"] {
            let p = EgressPolicy::parse(list).unwrap();
            assert!(p.check("127.0.0.1", ip("127.0.0.1"), 8081).is_ok(), "{list}");
            assert!(p.check("127.0.0.1", ip("127.0.0.1"), 3000).is_ok(), "{list}");
            let e = p.check("127.0.0.1", ip("127.0.0.1"), 22).unwrap_err();
            assert!(e.contains("port 8081, 3000 only") || e.contains("port 3000, 8081 only"), "{list}: {e}");
        }
        // A network on the default ports beside an origin on its own port, in both orders.
        for list in ["10.0.0.0/8,10.1.2.3:8443", "10.1.2.3:8443,10.0.0.0/8"] {
            let p = EgressPolicy::parse(list).unwrap();
            assert!(p.check("x", ip("10.1.2.3"), 8443).is_ok(), "{list}");
            assert!(p.check("x", ip("10.1.2.3"), 443).is_ok(), "{list}");
            assert!(p.check("x", ip("10.1.2.3"), 22).unwrap_err().contains("port 22 is not allowed"), "{list}");
            assert!(p.check("x", ip("10.9.9.9"), 8443).is_err(), "{list}");
        }
        // A host name and its address, each with its own port.
        let p = EgressPolicy::parse("fixture.test:8081,127.0.0.1:3000").unwrap();
        assert!(p.check("fixture.test", ip("127.0.0.1"), 3000).is_ok());
        assert!(p.check("fixture.test", ip("127.0.0.1"), 8081).is_ok());
        assert!(p.check("other.test", ip("127.0.0.1"), 8081).is_err());
    }

    #[test]
    fn a_url_where_an_origin_is_meant_is_refused_with_the_origin_to_give() {
        for (entry, origin) in [
            ("http://127.0.0.1:3000", "`127.0.0.1:3000`"),
            ("http://127.0.0.1:3000/path?q=1", "`127.0.0.1:3000`"),
            ("https://fixture.test/", "`fixture.test:443`"),
            ("HTTP://[::1]:9000/", "`[::1]:9000`"),
            ("http://fixture.test", "`fixture.test:80`"),
        ] {
            let e = EgressPolicy::parse(entry).unwrap_err();
            assert!(e.contains("is a URL") && e.contains(origin), "{entry}: {e}");
        }
        let e = EgressPolicy::parse("127.0.0.1:99999").unwrap_err();
        assert!(e.contains("`127.0.0.1:99999` is not a host name, an IP address or a CIDR block"), "{e}");
    }

    #[test]
    fn link_local_is_never_allowed_even_when_listed() {
        let p = EgressPolicy::parse("169.254.0.0/16, 169.254.170.2:80, metadata.test, fe80::/10").unwrap();
        for (host, addr) in [("169.254.170.2", "169.254.170.2"), ("metadata.test", "169.254.169.254"), ("x", "fe80::1"), ("x", "::ffff:169.254.170.2")] {
            let e = p.check(host, addr.parse().unwrap(), 80).unwrap_err();
            assert!(e.contains("link-local"), "{addr}: {e}");
        }
    }

    #[test]
    fn ports_are_configurable() {
        let p = EgressPolicy::default().with_ports("443").unwrap();
        assert!(p.check("x", "1.1.1.1".parse().unwrap(), 443).is_ok());
        assert!(p.check("x", "1.1.1.1".parse().unwrap(), 80).is_err());
        assert!(EgressPolicy::default().with_ports("").is_err());
        assert!(EgressPolicy::default().with_ports("80,x").is_err());
        let any = EgressPolicy::default().with_any_port();
        assert!(any.check("x", "1.1.1.1".parse().unwrap(), 8443).is_ok());
        assert!(any.check("x", "10.0.0.1".parse().unwrap(), 8443).unwrap_err().contains("private"));
    }

    #[test]
    fn default_policy_refuses_every_special_range() {
        let p = EgressPolicy::default();
        for ip in ["127.0.0.1", "10.0.0.1", "169.254.170.2", "::1", "fd00::1", "64:ff9b:1::1"] {
            assert!(p.check("h", ip.parse().unwrap(), 443).is_err(), "{ip}");
        }
    }
}
