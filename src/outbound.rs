//! Where calls to tenants' URLs may go (webhook endpoints, sales-channel shops). Those URLs are
//! chosen by tenants, so by default a call never reaches the gateway's own network: loopback,
//! private, link-local (cloud metadata), shared and reserved addresses are refused, both when a
//! URL names one and when its host resolves to one (checked at every connection, so a name
//! re-pointed later is caught too). `webhooks.allow_private_targets` and
//! `inventory.allow_private_channels` lift this for deployments inside their network.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// True for addresses on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // shared address space (carrier-grade NAT), 100.64.0.0/10
        || (a == 100 && (64..128).contains(&b))
        // benchmarking, 198.18.0.0/15
        || (a == 198 && (b == 18 || b == 19))
        // IETF protocol assignments, 192.0.0.0/24
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // reserved, 240.0.0.0/4
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // unique local fc00::/7, link-local fe80::/10, documentation 2001:db8::/32
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        // site-local fec0::/10 (deprecated, still routed inside some networks)
        || (s[0] & 0xffc0) == 0xfec0
        // addresses that carry an IPv4 address a gateway may translate to anything:
        // NAT64 64:ff9b::/96 and 64:ff9b:1::/48, 6to4 2002::/16, IPv4-compatible ::/96
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4])
        || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
        || s[0] == 0x2002
        || s[..6] == [0; 6])
}

/// Whether pushes may go to this port (`webhooks.allowed_ports`; empty: any).
pub fn port_allowed(url: &reqwest::Url, allowed: &[u16]) -> bool {
    allowed.is_empty()
        || url
            .port_or_known_default()
            .is_some_and(|p| allowed.contains(&p))
}

/// Why a URL's host may not receive pushes (an address literal or `localhost`), if it may not.
pub fn refused_host(url: &reqwest::Url) -> Option<String> {
    match url.host()? {
        url::Host::Ipv4(ip) if !is_public(IpAddr::V4(ip)) => {
            Some(format!("{ip} is a private, loopback or reserved address"))
        }
        url::Host::Ipv6(ip) if !is_public(IpAddr::V6(ip)) => {
            Some(format!("{ip} is a private, loopback or reserved address"))
        }
        url::Host::Domain(d)
            if d.eq_ignore_ascii_case("localhost")
                || d.to_ascii_lowercase().ends_with(".localhost") =>
        {
            Some(format!("{d} is this machine"))
        }
        _ => None,
    }
}

/// A resolver that keeps public addresses only: a name resolving to none fails the connection.
pub struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (private targets are not allowed)"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client for calls to tenants' URLs: no redirects, no proxy from the environment
/// (it would resolve hosts itself, past the checks), and unless `allow_private` every
/// connection only to public addresses.
pub fn client(
    timeout: std::time::Duration,
    allow_private: bool,
    user_agent: &str,
) -> reqwest::Result<reqwest::Client> {
    carriers::http::install_crypto_provider();
    let mut client = reqwest::Client::builder();
    if !allow_private {
        client = client.dns_resolver(std::sync::Arc::new(PublicOnly));
    }
    client
        .timeout(timeout)
        .connect_timeout(timeout.min(std::time::Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(user_agent)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "192.0.0.8",
            "64:ff9b::a00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "::10.0.0.1",
            "::8.8.8.8",
            "fec0::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "151.101.1.69",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn literal_hosts_are_judged_names_are_left_to_resolution() {
        let refused = |u: &str| refused_host(&reqwest::Url::parse(u).unwrap());
        assert!(refused("http://127.0.0.1:8080/x").is_some());
        assert!(refused("http://[::1]/x").is_some());
        assert!(refused("http://LOCALHOST/x").is_some());
        assert!(refused("http://169.254.169.254/latest/meta-data").is_some());
        assert!(refused("https://erp.example.com/hooks").is_none());
        assert!(refused("https://93.184.215.14/hooks").is_none());
    }

    #[test]
    fn ports_are_limited_unless_the_list_is_empty() {
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let web = [443, 80];
        assert!(port_allowed(&url("https://erp.example.com/hooks"), &web));
        assert!(port_allowed(&url("http://erp.example.com/hooks"), &web));
        assert!(!port_allowed(
            &url("https://erp.example.com:6379/hooks"),
            &web
        ));
        assert!(!port_allowed(&url("http://erp.example.com:8443/"), &web));
        assert!(port_allowed(&url("http://erp.example.com:8443/"), &[]));
    }

    #[tokio::test]
    async fn names_resolving_to_this_machine_are_refused_at_connection() {
        use reqwest::dns::Resolve;
        use std::str::FromStr;
        let name = reqwest::dns::Name::from_str("localhost").unwrap();
        let err = match PublicOnly.resolve(name).await {
            Ok(addrs) => panic!("resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
    }
}
