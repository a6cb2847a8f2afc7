//! The daemon's control requests (`'C'` packets, JSON): read and change
//! the simulated state. Everything but `version` needs `CAP_NET_ADMIN`,
//! like the real configuration operations.
//!
//! ```text
//! {"op":"version"}
//! {"op":"instances"}
//! {"op":"dump"}
//! {"op":"counters","action":"set"|"add"|"reset","netns":N?,"xlator":"siit"|"nat64",
//!  "instance":"default","values":[["JSTAT_RECEIVED6",12],...]}
//! {"op":"instance","action":"add"|"remove","netns":N?,"xlator":"siit"|"nat64",
//!  "instance":"NAME","framework":"netfilter"|"iptables"}
//! ```
//! `netns` defaults to the caller's. Answers are `{"ok":...}` or
//! `{"error":"..."}`.

use serde_json::{json, Value};

use crate::{
    kernel::{Caller, Framework, Kernel, NetnsId, Xlator},
    shared::Shared,
};

/// The caller may not use this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied;

/// Handles one request; the answer is JSON text.
pub fn handle(
    shared: &Shared,
    caller: &Caller,
    body: &[u8],
) -> Result<String, Denied> {
    let req: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Ok(json!({ "error": format!("bad JSON: {e}") }).to_string())
        }
    };
    let op = req.get("op").and_then(Value::as_str).unwrap_or_default();
    if op != "version" && !caller.net_admin {
        return Err(Denied);
    }
    let mut k = shared.kernel();
    let answer = match op {
        "version" => Ok(version(&k)),
        "instances" => Ok(instances(&k)),
        "dump" => Ok(dump(&k)),
        "counters" => counters(&mut k, caller, &req),
        "instance" => instance(&mut k, caller, &req),
        other => Err(format!("unknown op {other:?} (version, instances, dump, counters, instance)")),
    };
    Ok(match answer {
        Ok(v) => json!({ "ok": v }).to_string(),
        Err(e) => json!({ "error": e }).to_string(),
    })
}

fn version(k: &Kernel) -> Value {
    let p = k.profile();
    json!({ "release": p.release, "version": p.version_quad(), "family_id": k.family_id() })
}

fn instances(k: &Kernel) -> Value {
    let mut list = Vec::new();
    for (ns, netns) in k.namespaces() {
        for inst in netns.instances.values() {
            list.push(json!({
                "netns": ns,
                "xlator": inst.xlator.to_string(),
                "instance": inst.name,
                "framework": framework_name(inst.framework),
            }));
        }
    }
    Value::Array(list)
}

fn framework_name(f: Framework) -> &'static str {
    match f {
        Framework::Netfilter => "netfilter",
        Framework::Iptables => "iptables",
    }
}

fn dump(k: &Kernel) -> Value {
    let p = k.profile();
    let mut list = Vec::new();
    for (ns, netns) in k.namespaces() {
        for inst in netns.instances.values() {
            let counters: serde_json::Map<String, Value> = p
                .stats
                .iter()
                .map(|s| {
                    (s.name.clone(), json!(inst.counters[usize::from(s.id)]))
                })
                .collect();
            list.push(json!({
                "netns": ns,
                "xlator": inst.xlator.to_string(),
                "instance": inst.name,
                "framework": framework_name(inst.framework),
                "counters": counters,
            }));
        }
    }
    let modules = json!({ "siit": k.loaded(Xlator::Siit), "nat64": k.loaded(Xlator::Nat64) });
    json!({ "kernel": version(k), "modules": modules, "instances": list })
}

/// `(netns, xlator, instance name)` of a request.
fn target(
    caller: &Caller,
    req: &Value,
) -> Result<(NetnsId, Xlator, String), String> {
    let netns =
        req.get("netns").and_then(Value::as_u64).unwrap_or(caller.netns);
    let xlator = match req.get("xlator").and_then(Value::as_str) {
        Some("siit") => Xlator::Siit,
        Some("nat64") => Xlator::Nat64,
        other => {
            return Err(format!(
                "xlator must be \"siit\" or \"nat64\", not {other:?}"
            ))
        }
    };
    let name = req
        .get("instance")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_owned();
    Ok((netns, xlator, name))
}

fn counters(
    k: &mut Kernel,
    caller: &Caller,
    req: &Value,
) -> Result<Value, String> {
    let (netns, xlator, name) = target(caller, req)?;
    let action = req.get("action").and_then(Value::as_str).unwrap_or_default();
    if action == "reset" {
        k.reset_counters(netns, xlator, &name).map_err(|e| e.to_string())?;
        return Ok(json!(true));
    }
    let values = req
        .get("values")
        .and_then(Value::as_array)
        .ok_or("values must be a list")?;
    let p = k.profile();
    let mut ids = Vec::with_capacity(values.len());
    for v in values {
        let pair = v
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or("each value is [NAME, NUMBER]")?;
        let stat = pair[0].as_str().ok_or("a stat name is not a string")?;
        let n = pair[1]
            .as_u64()
            .ok_or_else(|| format!("{stat}: not an unsigned 64-bit number"))?;
        let s = p.stats.iter().find(|s| s.name == stat);
        let id = s
            .ok_or_else(|| {
                format!("{stat} is not a stat of Jool {}", p.release)
            })?
            .id;
        ids.push((id, n));
    }
    match action {
        "set" => k
            .set_counters(netns, xlator, &name, &ids)
            .map_err(|e| e.to_string())?,
        "add" => {
            for (id, n) in ids {
                k.add_counter(netns, xlator, &name, id, n)
                    .map_err(|e| e.to_string())?;
            }
        }
        other => {
            return Err(format!(
                "action must be set, add or reset, not {other:?}"
            ))
        }
    }
    Ok(json!(true))
}

fn instance(
    k: &mut Kernel,
    caller: &Caller,
    req: &Value,
) -> Result<Value, String> {
    let (netns, xlator, name) = target(caller, req)?;
    match req.get("action").and_then(Value::as_str) {
        Some("add") => {
            let framework = match req.get("framework").and_then(Value::as_str)
            {
                Some("iptables") => Framework::Iptables,
                _ => Framework::Netfilter,
            };
            k.add_instance(netns, xlator, &name, framework)
                .map_err(|e| e.to_string())?;
        }
        Some("remove") => {
            k.remove_instance(netns, xlator, &name)
                .map_err(|e| e.to_string())?;
        }
        other => {
            return Err(format!("action must be add or remove, not {other:?}"))
        }
    }
    Ok(json!(true))
}
