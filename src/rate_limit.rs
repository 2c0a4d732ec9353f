//! Per-address rate limits, one bucket per action (Lemmy's pattern), with governor.
//! IPv6 addresses are grouped by /64, the block one household or phone usually holds.
//! Limits are per instance; several instances each keep their own.
use std::net::IpAddr;
use std::num::NonZeroU32;

use actix_web::HttpRequest;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Sign,
    Confirm,
    PostcodeLookup,
    Letter,
    StaffSignIn,
}

pub struct RateLimits {
    enabled: bool,
    trusted_proxies: Vec<ipnet::IpNet>,
    sign: DefaultKeyedRateLimiter<IpAddr>,
    confirm: DefaultKeyedRateLimiter<IpAddr>,
    postcode: DefaultKeyedRateLimiter<IpAddr>,
    letter: DefaultKeyedRateLimiter<IpAddr>,
    sign_in: DefaultKeyedRateLimiter<IpAddr>,
    /// Sign-in attempts per staff account, wherever they come from.
    sign_in_account: DefaultKeyedRateLimiter<String>,
}

/// `per_minute` sustained with bursts of `burst`: generous enough for a room of people signing
/// on one Wi-Fi connection at a meeting, tight enough to stop a script.
fn quota(per_minute: u32, burst: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(per_minute).expect("non-zero")).allow_burst(NonZeroU32::new(burst).expect("non-zero"))
}

impl RateLimits {
    pub fn new(enabled: bool, trusted_proxies: Vec<ipnet::IpNet>) -> Self {
        RateLimits {
            enabled,
            trusted_proxies,
            sign: RateLimiter::keyed(quota(60, 30)),
            confirm: RateLimiter::keyed(quota(60, 30)),
            postcode: RateLimiter::keyed(quota(60, 30)),
            letter: RateLimiter::keyed(quota(60, 30)),
            sign_in: RateLimiter::keyed(quota(10, 10)),
            sign_in_account: RateLimiter::keyed(quota(2, 5)),
        }
    }

    pub fn check(&self, action: Action, req: &HttpRequest) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(addr) = self.client_address(req).map(group) else { return Ok(()) };
        let bucket = match action {
            Action::Sign => &self.sign,
            Action::Confirm => &self.confirm,
            Action::PostcodeLookup => &self.postcode,
            Action::Letter => &self.letter,
            Action::StaffSignIn => &self.sign_in,
        };
        bucket.check_key(&addr).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// The client's address: the peer, unless the peer is a trusted proxy, in which case the
    /// nearest untrusted address in `X-Forwarded-For` (read from the right, since a client can
    /// put anything on the left).
    pub fn client_address(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr()?.ip();
        if !self.trusted(peer) {
            return Some(peer);
        }
        let forwarded: Vec<IpAddr> = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        Some(forwarded.into_iter().rev().find(|a| !self.trusted(*a)).unwrap_or(peer))
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.trusted_proxies.iter().any(|n| n.contains(&ip))
    }

    /// Sign-in attempts against one account (keyed by its lower-cased email).
    pub fn check_account(&self, email: &str) -> Result<(), AppError> {
        if !self.enabled {
            return Ok(());
        }
        self.sign_in_account.check_key(&email.trim().to_lowercase()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited { retry_after_secs: wait.as_secs().max(1) }
        })
    }

    /// Forgets addresses whose buckets are full again, so memory stays bounded.
    pub fn forget_idle(&self) {
        for bucket in [&self.sign, &self.confirm, &self.postcode, &self.letter, &self.sign_in] {
            bucket.retain_recent();
            bucket.shrink_to_fit();
        }
        self.sign_in_account.retain_recent();
        self.sign_in_account.shrink_to_fit();
    }
}

/// An IPv6 address stands for its /64; IPv4 (and IPv4-mapped IPv6) for itself.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::group;

    #[test]
    fn ipv6_is_grouped_by_64() {
        let a = group("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = group("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = group("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(group("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7".parse::<std::net::IpAddr>().unwrap());
    }
}
