//! Field-level checks shared by the validation passes: parsing addresses and networks, ranges,
//! names, and [`Ctx`], which turns a spanned value into a [`Diagnostic`] at its position.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use toml::Spanned;

use super::{Diagnostic, MAX_LAB_NAME, line_col};

/// Builds diagnostics that point into one file.
pub(super) struct Ctx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
}

impl Ctx<'_> {
    pub(super) fn at<T>(
        &self,
        spanned: &Spanned<T>,
        field: impl Into<String>,
        value: Option<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Box<Diagnostic> {
        let (line, col) = line_col(self.text, spanned.span().start);
        Box::new(Diagnostic {
            file: self.file.to_owned(),
            line,
            col,
            field: field.into(),
            value,
            problem: problem.into(),
            hint: hint.into(),
        })
    }

    pub(super) fn pos<T>(&self, spanned: &Spanned<T>) -> String {
        let (line, col) = line_col(self.text, spanned.span().start);
        format!("{line}:{col}")
    }
}

pub(super) fn quoted(s: &Spanned<String>) -> Option<String> {
    Some(format!("{:?}", s.get_ref()))
}

/// Lab names become namespace names and directory names: lower-case letters, digits, `-`.
pub(super) fn check_lab_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_LAB_NAME {
        return Err(format!("must be 1 to {MAX_LAB_NAME} characters long"));
    }
    if !is_dns_label(name) {
        return Err("may hold only lower-case letters, digits and '-', not at either end".into());
    }
    Ok(())
}

pub(super) fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A lab network: an IPv4 network without host bits, with room for a few nodes.
pub(super) fn parse_cidr(
    ctx: &Ctx<'_>,
    s: &Spanned<String>,
    field: &str,
) -> Result<Ipv4Network, Box<Diagnostic>> {
    let net = parse_network(
        ctx,
        s,
        field,
        "write it as ADDRESS/PREFIX, e.g. \"10.1.0.0/24\"",
    )?;
    if net.prefix() > 29 {
        return Err(ctx.at(
            s,
            field,
            quoted(s),
            "is too small for a lab network",
            "use a prefix of /29 or shorter (e.g. /24)",
        ));
    }
    Ok(net)
}

pub(super) fn parse_ip(
    ctx: &Ctx<'_>,
    s: &Spanned<String>,
    field: &str,
) -> Result<Ipv4Addr, Box<Diagnostic>> {
    s.get_ref().parse().map_err(|_| {
        ctx.at(
            s,
            field,
            quoted(s),
            "is not an IPv4 address",
            "write a plain address such as \"10.1.0.10\" (the prefix comes from the network)",
        )
    })
}

pub(super) fn ranged(
    ctx: &Ctx<'_>,
    value: Option<&Spanned<i64>>,
    default: u32,
    range: &std::ops::RangeInclusive<u32>,
    field: &str,
    unit: &str,
) -> Result<u32, Box<Diagnostic>> {
    let Some(v) = value else { return Ok(default) };
    let n = *v.get_ref();
    match u32::try_from(n) {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(ctx.at(
            v,
            field,
            Some(n.to_string()),
            "is out of range",
            format!("use {} to {}{unit}", range.start(), range.end(),),
        )),
    }
}

/// Any IPv4 network without host bits (a route's destination).
pub(super) fn parse_cidr_any(
    ctx: &Ctx<'_>,
    s: &Spanned<String>,
    field: &str,
) -> Result<Ipv4Network, Box<Diagnostic>> {
    parse_network(ctx, s, field, "write it as ADDRESS/PREFIX")
}

/// An IPv4 network without host bits; `hint` says how to write one.
fn parse_network(
    ctx: &Ctx<'_>,
    s: &Spanned<String>,
    field: &str,
    hint: &str,
) -> Result<Ipv4Network, Box<Diagnostic>> {
    let net: Ipv4Network = s
        .get_ref()
        .parse()
        .map_err(|_| ctx.at(s, field, quoted(s), "is not an IPv4 network", hint))?;
    if net.network() != net.ip() {
        return Err(ctx.at(
            s,
            field,
            quoted(s),
            "has host bits set",
            format!("did you mean \"{}/{}\"?", net.network(), net.prefix()),
        ));
    }
    Ok(net)
}
