//! One test per validation rule: each checks the position, the field and the value named.

use super::*;

const GOOD: &str = r#"name = "t"

[[networks]]
name = "lan"
cidr = "10.1.0.0/24"

[[nodes]]
name = "cp1"
role = "control-plane"
interfaces = [{ network = "lan" }]

[[nodes]]
name = "w1"
role = "worker"
vcpus = 2
memory = 512
interfaces = [{ network = "lan", address = "10.1.0.50" }]
"#;

fn err(text: &str) -> Diagnostic {
    match Topology::parse("t.toml", text) {
        Ok(t) => panic!("accepted: {t:?}"),
        Err(e) => e.diagnostic().expect("points into the file").clone(),
    }
}

/// Line and column of the first occurrence of `needle` in `text`.
fn pos(text: &str, needle: &str) -> (usize, usize) {
    line_col(text, text.find(needle).expect("needle in text"))
}

#[test]
fn accepts_good_file_and_fills_defaults() {
    let t = Topology::parse("t.toml", GOOD).unwrap();
    assert_eq!(t.name, "t");
    assert_eq!(t.nodes[0].vcpus, DEFAULT_VCPUS);
    assert_eq!(t.nodes[0].memory_mib, DEFAULT_MEMORY_MIB);
    assert_eq!(t.nodes[1].vcpus, 2);
    assert_eq!(t.nodes[1].memory_mib, 512);
    assert_eq!(t.nodes[0].interfaces[0].name, "eth0");
    assert_eq!(t.nodes[1].interfaces[0].address.to_string(), "10.1.0.50/24");
    assert_eq!(t.management.to_string(), DEFAULT_MANAGEMENT_CIDR);
    assert_eq!(t.management_address(1).to_string(), "172.31.254.11/24");
    assert_eq!(t.management_host_address().to_string(), "172.31.254.1/24");
}

#[test]
fn derives_addresses_from_network_and_node_index() {
    let t = Topology::parse("t.toml", GOOD).unwrap();
    // Node 0 on 10.1.0.0/24 gets .10 (offset 10 + index 0), deterministically.
    assert_eq!(t.nodes[0].interfaces[0].address.to_string(), "10.1.0.10/24");
    let again = Topology::parse("t.toml", GOOD).unwrap();
    assert_eq!(t, again);
}

#[test]
fn unknown_key_is_refused_with_position() {
    let text = GOOD.replace("vcpus = 2", "vcpus = 2\ncolour = \"blue\"");
    let d = err(&text);
    assert_eq!((d.line, d.col), pos(&text, "colour"), "{d}");
    assert!(d.problem.contains("colour"), "{d}");
    assert!(d.to_string().starts_with("t.toml:"), "{d}");
}

#[test]
fn duplicate_node_name() {
    let text = GOOD.replace("name = \"w1\"", "name = \"cp1\"");
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].name");
    assert_eq!(d.value.as_deref(), Some("\"cp1\""));
    assert!(d.problem.contains("duplicate"), "{d}");
    // Points at the second declaration, and names where the first is.
    let second = text.rfind("\"cp1\"").unwrap();
    assert_eq!((d.line, d.col), line_col(&text, second));
    assert!(d.problem.contains("nodes[0] at 8:8"), "{d}");
}

#[test]
fn duplicate_network_name() {
    let text = GOOD.replace(
        "[[nodes]]\nname = \"cp1\"",
        "[[networks]]\nname = \"lan\"\ncidr = \"10.2.0.0/24\"\n\n[[nodes]]\nname = \"cp1\"",
    );
    let d = err(&text);
    assert_eq!(d.field, "networks[1].name");
    assert!(d.problem.contains("duplicate network name"), "{d}");
}

#[test]
fn address_outside_its_network() {
    let text = GOOD.replace("10.1.0.50", "10.9.0.50");
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].interfaces[0].address");
    assert_eq!(d.value.as_deref(), Some("\"10.9.0.50\""));
    assert!(d.problem.contains("outside"), "{d}");
    assert_eq!((d.line, d.col), pos(&text, "\"10.9.0.50\""));
}

#[test]
fn address_that_is_not_an_address() {
    let text = GOOD.replace("10.1.0.50", "10.1.0.300");
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].interfaces[0].address");
    assert!(d.problem.contains("not an IPv4 address"), "{d}");
}

#[test]
fn static_address_used_twice() {
    let text = GOOD.replace(
        "interfaces = [{ network = \"lan\" }]",
        "interfaces = [{ network = \"lan\", address = \"10.1.0.50\" }]",
    );
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].interfaces[0].address");
    assert!(d.problem.contains("already used by nodes[0] (cp1)"), "{d}");
}

#[test]
fn derived_address_colliding_with_static_one() {
    // w1 takes 10.1.0.10, which is what cp1 (index 0) derives.
    let text = GOOD.replace("10.1.0.50", "10.1.0.10");
    let d = err(&text);
    assert_eq!(d.field, "nodes[0].interfaces[0].network");
    assert!(d.problem.contains("derived address 10.1.0.10"), "{d}");
}

#[test]
fn overlapping_networks() {
    let text = GOOD.replace(
        "[[nodes]]\nname = \"cp1\"",
        "[[networks]]\nname = \"big\"\ncidr = \"10.0.0.0/8\"\n\n[[nodes]]\nname = \"cp1\"",
    );
    let d = err(&text);
    assert_eq!(d.field, "networks[1].cidr");
    assert!(d.problem.contains("overlaps network \"lan\""), "{d}");
    assert_eq!((d.line, d.col), pos(&text, "\"10.0.0.0/8\""));
}

#[test]
fn network_overlapping_management() {
    let text = GOOD
        .replace("10.1.0.0/24", "172.31.0.0/16")
        .replace("10.1.0.50", "172.31.0.50");
    let d = err(&text);
    assert_eq!(d.field, "networks[0].cidr");
    assert!(d.problem.contains("management"), "{d}");
}

#[test]
fn network_with_host_bits() {
    let d = err(&GOOD.replace("10.1.0.0/24", "10.1.0.5/24"));
    assert_eq!(d.field, "networks[0].cidr");
    assert!(d.hint.contains("10.1.0.0/24"), "{d}");
}

#[test]
fn interface_on_undeclared_network() {
    let text = GOOD.replace(
        "interfaces = [{ network = \"lan\" }]",
        "interfaces = [{ network = \"wan\" }]",
    );
    let d = err(&text);
    assert_eq!(d.field, "nodes[0].interfaces[0].network");
    assert_eq!(d.value.as_deref(), Some("\"wan\""));
    assert!(d.hint.contains("\"lan\""), "{d}");
    assert_eq!((d.line, d.col), pos(&text, "\"wan\""));
}

#[test]
fn memory_out_of_range() {
    let text = GOOD.replace("memory = 512", "memory = 64");
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].memory");
    assert_eq!(d.value.as_deref(), Some("64"));
    assert!(d.hint.contains("128 to 16384"), "{d}");
    assert_eq!((d.line, d.col), pos(&text, "64"));
}

#[test]
fn vcpus_out_of_range() {
    for bad in ["0", "-1", "99"] {
        let d = err(&GOOD.replace("vcpus = 2", &format!("vcpus = {bad}")));
        assert_eq!(d.field, "nodes[1].vcpus");
        assert_eq!(d.value.as_deref(), Some(bad));
    }
}

#[test]
fn unknown_role() {
    let text = GOOD.replace("role = \"worker\"", "role = \"boss\"");
    let d = err(&text);
    assert!(d.problem.contains("boss"), "{d}");
    assert_eq!((d.line, d.col), pos(&text, "\"boss\""));
}

#[test]
fn route_via_unreachable_next_hop() {
    let text = GOOD.replace(
        "memory = 512",
        "memory = 512\nroutes = [{ to = \"10.2.0.0/24\", via = \"10.3.0.1\" }]",
    );
    let d = err(&text);
    assert_eq!(d.field, "nodes[1].routes[0].via");
    assert!(d.problem.contains("next hop"), "{d}");
}

#[test]
fn bad_lab_name() {
    let d = err(&GOOD.replace("name = \"t\"", "name = \"My Lab\""));
    assert_eq!(d.field, "name");
    assert_eq!((d.line, d.col), (1, 8));
}

#[test]
fn rename_checks_the_name() {
    let mut t = Topology::parse("t.toml", GOOD).unwrap();
    assert!(t.rename("bad name").is_err());
    t.rename("other").unwrap();
    assert_eq!(t.name, "other");
}

#[test]
fn shipped_topologies_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../topologies");
    for name in ["single", "minimal", "ha", "routed"] {
        let t = Topology::load(&dir.join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(t.name, name);
    }
    let ha = Topology::load(&dir.join("ha.toml")).unwrap();
    let roles = |r: Role| ha.nodes.iter().filter(|n| n.role == r).count();
    assert_eq!((roles(Role::ControlPlane), roles(Role::Worker)), (3, 2));
    let routed = Topology::load(&dir.join("routed.toml")).unwrap();
    let workers: Vec<&Node> = routed
        .nodes
        .iter()
        .filter(|n| n.role == Role::Worker)
        .collect();
    assert_ne!(
        workers[0].interfaces[0].network,
        workers[1].interfaces[0].network
    );
    assert!(
        routed
            .nodes
            .iter()
            .any(|n| n.role == Role::Router && n.interfaces.len() == 2)
    );
}
