//! Rules a topology must follow, checked in file order so the first problem reported is the
//! first one in the file. Produces the resolved [`Topology`] with defaults and derived
//! addresses filled in.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;

use super::fields::{
    Ctx, check_lab_name, is_dns_label, parse_cidr, parse_cidr_any, parse_ip, quoted, ranged,
};
use super::raw::{RawNode, RawTopology};
use super::{
    DEFAULT_MANAGEMENT_CIDR, DEFAULT_MEMORY_MIB, DEFAULT_VCPUS, DERIVED_HOST_OFFSET, Diagnostic,
    Interface, MEMORY_RANGE_MIB, Network, Node, Route, Topology, VCPUS_RANGE,
};

/// Validates `raw` and resolves defaults; the first problem in file order is returned.
pub(super) fn validate(
    file: &str,
    text: &str,
    raw: RawTopology,
) -> Result<Topology, Box<Diagnostic>> {
    let ctx = Ctx { file, text };

    check_lab_name(raw.name.get_ref())
        .map_err(|p| ctx.at(&raw.name, "name", quoted(&raw.name), p, "rename the lab"))?;

    let management = match &raw.management {
        Some(m) => parse_cidr(&ctx, &m.cidr, "management.cidr")?,
        None => DEFAULT_MANAGEMENT_CIDR
            .parse()
            .expect("constant is a valid network"),
    };

    // Networks: names unique, CIDRs valid and disjoint (also from management).
    let mut networks: Vec<Network> = Vec::new();
    for (i, n) in raw.networks.iter().enumerate() {
        let field = format!("networks[{i}]");
        if !is_dns_label(n.name.get_ref()) {
            return Err(ctx.at(
                &n.name,
                format!("{field}.name"),
                quoted(&n.name),
                "is not a valid network name",
                "use lower-case letters, digits and '-'",
            ));
        }
        if let Some(j) = raw.networks[..i]
            .iter()
            .position(|o| o.name.get_ref() == n.name.get_ref())
        {
            return Err(ctx.at(
                &n.name,
                format!("{field}.name"),
                quoted(&n.name),
                format!(
                    "duplicate network name, already declared by networks[{j}] at {}",
                    ctx.pos(&raw.networks[j].name)
                ),
                "give each network its own name",
            ));
        }
        let cidr = parse_cidr(&ctx, &n.cidr, &format!("{field}.cidr"))?;
        if cidr.overlaps(management) {
            return Err(ctx.at(
                &n.cidr,
                format!("{field}.cidr"),
                quoted(&n.cidr),
                format!("overlaps the management network {management}"),
                "pick another range, or move the management network with [management] cidr",
            ));
        }
        if let Some(o) = networks.iter().find(|o| o.cidr.overlaps(cidr)) {
            return Err(ctx.at(
                &n.cidr,
                format!("{field}.cidr"),
                quoted(&n.cidr),
                format!("overlaps network {:?} ({})", o.name, o.cidr),
                "give each network a range of its own",
            ));
        }
        networks.push(Network {
            name: n.name.get_ref().clone(),
            cidr,
        });
    }

    if raw.nodes.is_empty() {
        return Err(ctx.at(
            &raw.name,
            "nodes",
            None,
            "the lab declares no nodes",
            "add at least one [[nodes]] table",
        ));
    }
    let max_nodes = management.size().saturating_sub(DERIVED_HOST_OFFSET + 1) as usize;
    if raw.nodes.len() > max_nodes {
        return Err(ctx.at(
            &raw.name,
            "nodes",
            Some(raw.nodes.len().to_string()),
            format!("more nodes than the management network {management} can address"),
            "use a larger [management] cidr",
        ));
    }

    // Nodes, first pass: everything but derived addresses.
    let mut used: HashMap<Ipv4Addr, String> = HashMap::new();
    let mut nodes = Vec::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        nodes.push(node(&ctx, &raw, &networks, i, n, &mut used)?);
    }

    // Second pass: derive missing addresses, checking them against every static one.
    for (i, n) in raw.nodes.iter().enumerate() {
        for (k, iface) in n.interfaces.iter().enumerate() {
            if iface.address.is_some() {
                continue;
            }
            let net = networks
                .iter()
                .find(|x| &x.name == iface.network.get_ref())
                .expect("first pass checked the network exists");
            let field = format!("nodes[{i}].interfaces[{k}].network");
            let Some(ip) = net
                .cidr
                .nth(DERIVED_HOST_OFFSET + i as u32)
                .filter(|ip| *ip != net.cidr.broadcast())
            else {
                return Err(ctx.at(
                    &iface.network,
                    field,
                    quoted(&iface.network),
                    format!(
                        "network {} is too small to derive an address for node #{i}",
                        net.cidr
                    ),
                    "give this interface an explicit address",
                ));
            };
            if let Some(owner) = used.get(&ip) {
                return Err(ctx.at(
                    &iface.network,
                    field,
                    quoted(&iface.network),
                    format!("the derived address {ip} is already used by {owner}"),
                    "give one of them an explicit, different address",
                ));
            }
            used.insert(ip, format!("nodes[{i}] ({})", n.name.get_ref()));
            nodes[i].interfaces[k].address =
                Ipv4Network::new(ip, net.cidr.prefix()).expect("prefix from a valid network");
        }
    }

    // Routes: the next hop must be on one of the node's networks.
    for (i, n) in raw.nodes.iter().enumerate() {
        for (r, route) in n.routes.iter().enumerate() {
            let to = parse_cidr_any(&ctx, &route.to, &format!("nodes[{i}].routes[{r}].to"))?;
            let via = parse_ip(&ctx, &route.via, &format!("nodes[{i}].routes[{r}].via"))?;
            if !nodes[i].interfaces.iter().any(|x| x.address.contains(via)) {
                return Err(ctx.at(
                    &route.via,
                    format!("nodes[{i}].routes[{r}].via"),
                    quoted(&route.via),
                    format!(
                        "next hop is not on any network of node {:?}",
                        n.name.get_ref()
                    ),
                    "use an address on one of the node's interfaces' networks",
                ));
            }
            nodes[i].routes.push(Route { to, via });
        }
    }

    Ok(Topology {
        name: raw.name.into_inner(),
        management,
        networks,
        nodes,
    })
}

/// First pass over one node: name, role, sizes, interfaces with static addresses.
fn node(
    ctx: &Ctx<'_>,
    raw: &RawTopology,
    networks: &[Network],
    i: usize,
    n: &RawNode,
    used: &mut HashMap<Ipv4Addr, String>,
) -> Result<Node, Box<Diagnostic>> {
    let field = format!("nodes[{i}]");
    let name = n.name.get_ref();
    if !is_dns_label(name) {
        return Err(ctx.at(
            &n.name,
            format!("{field}.name"),
            quoted(&n.name),
            "is not a valid host name",
            "use lower-case letters, digits and '-' (at most 63)",
        ));
    }
    if let Some(j) = raw.nodes[..i].iter().position(|o| o.name.get_ref() == name) {
        return Err(ctx.at(
            &n.name,
            format!("{field}.name"),
            quoted(&n.name),
            format!(
                "duplicate node name, already declared by nodes[{j}] at {}",
                ctx.pos(&raw.nodes[j].name)
            ),
            "give each node its own name",
        ));
    }
    let vcpus = ranged(
        ctx,
        n.vcpus.as_ref(),
        DEFAULT_VCPUS,
        &VCPUS_RANGE,
        &format!("{field}.vcpus"),
        "",
    )?;
    let memory_mib = ranged(
        ctx,
        n.memory.as_ref(),
        DEFAULT_MEMORY_MIB,
        &MEMORY_RANGE_MIB,
        &format!("{field}.memory"),
        " (MiB)",
    )?;
    if n.interfaces.is_empty() {
        return Err(ctx.at(
            &n.name,
            format!("{field}.interfaces"),
            None,
            format!("node {name:?} has no interface on a declared network"),
            "add interfaces = [{ network = \"...\" }]",
        ));
    }

    let mut interfaces: Vec<Interface> = Vec::new();
    for (k, iface) in n.interfaces.iter().enumerate() {
        let ifield = format!("{field}.interfaces[{k}]");
        let Some(net) = networks.iter().find(|x| &x.name == iface.network.get_ref()) else {
            let declared: Vec<&str> = networks.iter().map(|x| x.name.as_str()).collect();
            return Err(ctx.at(
                &iface.network,
                format!("{ifield}.network"),
                quoted(&iface.network),
                "is not a declared network",
                format!("declare it under [[networks]] or use one of {declared:?}"),
            ));
        };
        if interfaces.iter().any(|x| x.network == net.name) {
            return Err(ctx.at(
                &iface.network,
                format!("{ifield}.network"),
                quoted(&iface.network),
                format!("node {name:?} already has an interface on this network"),
                "one interface per network and node",
            ));
        }
        let if_name = match &iface.name {
            Some(s) => {
                let v = s.get_ref();
                if v.is_empty()
                    || v.len() > 15
                    || !v.bytes().all(|b| b.is_ascii_alphanumeric())
                    || v.starts_with("mgmt")
                {
                    return Err(ctx.at(
                        s,
                        format!("{ifield}.name"),
                        quoted(s),
                        "is not a usable interface name",
                        "use 1 to 15 letters and digits, not starting with \"mgmt\" (reserved)",
                    ));
                }
                if interfaces.iter().any(|x| &x.name == v) {
                    return Err(ctx.at(
                        s,
                        format!("{ifield}.name"),
                        quoted(s),
                        format!("node {name:?} already has an interface of this name"),
                        "give each interface its own name",
                    ));
                }
                v.clone()
            }
            None => format!("eth{k}"),
        };
        // Placeholder for derived addresses; the second pass fills them in.
        let mut address = Ipv4Network::new(net.cidr.network(), net.cidr.prefix())
            .expect("prefix from a valid network");
        if let Some(s) = &iface.address {
            let afield = format!("{ifield}.address");
            let ip = parse_ip(ctx, s, &afield)?;
            if !net.cidr.contains(ip) {
                return Err(ctx.at(
                    s,
                    afield,
                    quoted(s),
                    format!("is outside its network {:?} ({})", net.name, net.cidr),
                    format!("use an address inside {}", net.cidr),
                ));
            }
            if ip == net.cidr.network() || ip == net.cidr.broadcast() {
                return Err(ctx.at(
                    s,
                    afield,
                    quoted(s),
                    format!("is the network or broadcast address of {}", net.cidr),
                    "use a host address",
                ));
            }
            if let Some(owner) = used.get(&ip) {
                return Err(ctx.at(
                    s,
                    afield,
                    quoted(s),
                    format!("is already used by {owner}"),
                    "give every interface its own address",
                ));
            }
            used.insert(ip, format!("nodes[{i}] ({name})"));
            address = Ipv4Network::new(ip, net.cidr.prefix()).expect("prefix from a valid network");
        }
        interfaces.push(Interface {
            name: if_name,
            network: net.name.clone(),
            address,
        });
    }

    Ok(Node {
        name: name.clone(),
        role: *n.role.get_ref(),
        vcpus,
        memory_mib,
        interfaces,
        routes: Vec::new(),
    })
}
