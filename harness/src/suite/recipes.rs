//! Traffic topologies and recipes, by name. A topology is a set of
//! namespaces joined by veth pairs with one translator instance in the
//! middle (the one the recipes' counter deltas refer to); a recipe is the
//! traffic that moves those counters.
//!
//! In kernel mode the shell commands below really run (the real `jool`
//! client configures the instance: EAMT and pool4 are not jool-stats
//! commands). In sim mode a topology only adds its instance, and a recipe
//! applies the deltas its step declares.

use jool_sim::kernel::Xlator;

/// A topology.
#[derive(Debug)]
pub struct Topology {
    /// Name used by suites.
    pub name: &'static str,
    /// The translator's namespace.
    pub netns: &'static str,
    /// The translator type of its instance (named `default`).
    pub xlator: Xlator,
    /// Every namespace it creates (deleted when the case ends).
    pub namespaces: &'static [&'static str],
    /// `sh -c` scripts, in order, that build it.
    pub setup: &'static [&'static str],
}

/// A traffic recipe.
#[derive(Debug)]
pub struct Traffic {
    /// Name used by suites.
    pub name: &'static str,
    /// The topology it needs.
    pub topology: &'static str,
    /// What it sends.
    pub description: &'static str,
    /// `sh -c` script that sends it; a non-zero exit is not a failure
    /// (pings that get no answer are the point of some recipes).
    pub script: &'static str,
}

/// The SIIT topology of the 4.1.9 captures: `s6` — `siit` — `s4`.
const SIIT: Topology = Topology {
    name: "siit",
    netns: "siit",
    xlator: Xlator::Siit,
    namespaces: &["siit", "s6", "s4"],
    // Few processes: every exec costs ~6 ms under TCG (~26 ms with
    // ASLR, see `vm::qemu_command`), so each namespace is configured by
    // one `ip -batch`, and the translator's sysctls and instance by one
    // `ip netns exec ... sh`.
    setup: &[
        "printf 'netns add siit\\nnetns add s6\\nnetns add s4\\nlink add name s6a netns siit type veth peer name s6b netns s6\\nlink add name s4a netns siit type veth peer name s4b netns s4\\n' | ip -batch -",
        "printf 'link set lo up\\nlink set s6a up\\nlink set s4a up\\naddr add 2001:db8:2::1/64 dev s6a nodad\\naddr add 192.0.2.254/24 dev s4a\\n' | ip -n siit -batch -",
        "printf 'link set lo up\\nlink set s6b up\\naddr add 2001:db8:2::2/64 dev s6b nodad\\naddr add 2001:db8:2::99/64 dev s6b nodad preferred_lft 0\\nroute add 64:ff9b::/96 via 2001:db8:2::1\\n' | ip -n s6 -batch -",
        "printf 'link set lo up\\nlink set s4b up\\naddr add 192.0.2.1/24 dev s4b\\nroute add default via 192.0.2.254\\n' | ip -n s4 -batch -",
        "ip netns exec siit sh -c 'sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1 && jool_siit instance add --netfilter --pool6 64:ff9b::/96 && jool_siit eamt add 2001:db8:2::2/128 198.51.100.2/32'",
    ],
};

/// The NAT64 topology of the 4.1.9 captures: `n6` — `nat` — `n4`.
const NAT64: Topology = Topology {
    name: "nat64",
    netns: "nat",
    xlator: Xlator::Nat64,
    namespaces: &["nat", "n6", "n4"],
    setup: &[
        "printf 'netns add nat\\nnetns add n6\\nnetns add n4\\nlink add name n6a netns nat type veth peer name n6b netns n6\\nlink add name n4a netns nat type veth peer name n4b netns n4\\n' | ip -batch -",
        "printf 'link set lo up\\nlink set n6a up\\nlink set n4a up\\naddr add 2001:db8:1::1/64 dev n6a nodad\\naddr add 192.0.2.254/24 dev n4a\\n' | ip -n nat -batch -",
        "printf 'link set lo up\\nlink set n6b up\\naddr add 2001:db8:1::2/64 dev n6b nodad\\nroute add 64:ff9b::/96 via 2001:db8:1::1\\n' | ip -n n6 -batch -",
        "printf 'link set lo up\\nlink set n4b up\\naddr add 192.0.2.1/24 dev n4b\\n' | ip -n n4 -batch -",
        "ip netns exec nat sh -c 'sysctl -qw net.ipv4.conf.all.forwarding=1 net.ipv6.conf.all.forwarding=1 && jool instance add --netfilter --pool6 64:ff9b::/96 && jool pool4 add 192.0.2.254 61001-65535 --tcp && jool pool4 add 192.0.2.254 61001-65535 --udp && jool pool4 add 192.0.2.254 0-65535 --icmp'",
    ],
};

const TRAFFIC: &[Traffic] = &[
    Traffic {
        name: "siit-ping6",
        topology: "siit",
        description: "3 pings from s6 to 64:ff9b::192.0.2.1, translated and answered",
        script: "ip netns exec s6 ping -c 3 -i 0.05 -W 1 -I 2001:db8:2::2 64:ff9b::192.0.2.1",
    },
    Traffic {
        name: "siit-untranslatable-src",
        topology: "siit",
        description: "2 pings from an address outside the EAMT (JSTAT64_SRC)",
        script: "ip netns exec s6 ping -c 2 -i 0.05 -W 0.3 -I 2001:db8:2::99 64:ff9b::192.0.2.1",
    },
    Traffic {
        name: "siit-unroutable",
        topology: "siit",
        description: "2 pings to 64:ff9b::203.0.113.9: the translated IPv4 destination has no route",
        script: "ip netns exec s6 ping -c 2 -i 0.05 -W 0.3 -I 2001:db8:2::2 64:ff9b::203.0.113.9",
    },
    Traffic {
        name: "siit-too-big",
        topology: "siit",
        description: "a DF ping of 1400 bytes from s4 to s6 while the IPv6 link's MTU is 1280 (the sender then caches the path MTU: one packet only)",
        script: "ip -n siit link set s6a mtu 1280; ip netns exec s4 ping -c 1 -W 0.3 -M do -s 1400 198.51.100.2; ip -n siit link set s6a mtu 1500",
    },
    Traffic {
        name: "nat64-ping6",
        topology: "nat64",
        description: "3 pings from n6 to 64:ff9b::192.0.2.1, translated and answered",
        script: "ip netns exec n6 ping -c 3 -i 0.05 -W 1 64:ff9b::192.0.2.1",
    },
    Traffic {
        name: "nat64-no-bib",
        topology: "nat64",
        description: "3 UDP datagrams from n4 to pool4 192.0.2.254:62000, which no BIB entry matches",
        script: "ip netns exec n4 bash -c 'for i in 1 2 3; do echo hi > /dev/udp/192.0.2.254/62000; done'",
    },
    Traffic {
        name: "nat64-unroutable",
        topology: "nat64",
        description: "2 pings to 64:ff9b::203.0.113.9: the translated IPv4 destination has no route",
        script: "ip netns exec n6 ping -c 2 -i 0.05 -W 0.3 64:ff9b::203.0.113.9",
    },
    Traffic {
        name: "nat64-too-big",
        topology: "nat64",
        description: "a ping of 1400 bytes from n6 while the IPv4 link's MTU is 1280 (the sender then caches the path MTU: one packet only)",
        script: "ip -n nat link set n4a mtu 1280; ip netns exec n6 ping -c 1 -W 0.3 -M do -s 1400 64:ff9b::192.0.2.1; ip -n nat link set n4a mtu 1500",
    },
];

/// The topology named `name`.
pub fn topology(name: &str) -> Option<&'static Topology> {
    [&SIIT, &NAT64].into_iter().find(|t| t.name == name)
}

/// The recipe named `name`.
pub fn traffic(name: &str) -> Option<&'static Traffic> {
    TRAFFIC.iter().find(|t| t.name == name)
}

/// Every recipe.
pub fn all_traffic() -> &'static [Traffic] {
    TRAFFIC
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn test_every_recipe_has_its_topology() {
        for t in all_traffic() {
            assert!(topology(t.topology).is_some(), "{}", t.name);
        }
    }
}
