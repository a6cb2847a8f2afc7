//! The daemon's control requests (`'C'` packets, JSON): read and change
//! the simulated state. Everything but `version` needs `CAP_NET_ADMIN`,
//! like the real configuration operations.
//!
//! ```text
//! {"op":"version"}
//! {"op":"instances"}
//! {"op":"dump"}
//! {"op":"counters","action":"set"|"add","netns":N?,"xlator":"siit"|"nat64",
//!  "instance":"default","values":[["JSTAT_RECEIVED6",12],...]}
//! {"op":"counters","action":"reset","netns":N?,"xlator":"siit"|"nat64",
//!  "instance":"default","names":["JSTAT_RECEIVED6",...]?}
//! {"op":"instance","action":"add"|"remove","netns":N?,"xlator":"siit"|"nat64",
//!  "instance":"NAME","framework":"netfilter"|"iptables"}
//! ```
//! `netns` defaults to the caller's, `instance` to `default`. A reset
//! without names zeroes every counter. Requests are checked whole before
//! anything changes: an unknown op, field, action or counter name, `set`
//! or `add` without values, `values` in a reset or `names` elsewhere is
//! an error and changes nothing. Answers are `{"ok":...}` or
//! `{"error":"..."}`.

use std::fmt;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    kernel::{Caller, Framework, Kernel, NetnsId, StateError, Xlator},
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
    let answer = match serde_json::from_slice::<Value>(body) {
        Err(e) => Err(RequestError::Invalid(e.to_string())),
        Ok(req) => {
            let op = req.get("op").and_then(Value::as_str);
            if op != Some("version") && !caller.net_admin {
                return Err(Denied);
            }
            serde_json::from_value::<Request>(req)
                .map_err(|e| RequestError::Invalid(e.to_string()))
                .and_then(|r| run(&mut shared.kernel(), caller, &r))
        }
    };
    Ok(match answer {
        Ok(v) => json!({ "ok": v }).to_string(),
        Err(e) => json!({ "error": e.to_string() }).to_string(),
    })
}

fn run(
    k: &mut Kernel,
    caller: &Caller,
    req: &Request,
) -> Result<Value, RequestError> {
    match req {
        Request::Version => Ok(version(k)),
        Request::Instances => Ok(instances(k)),
        Request::Dump => Ok(dump(k)),
        Request::Counters {
            action,
            netns,
            xlator,
            instance,
            values,
            names,
        } => {
            let target = Target { netns: *netns, xlator: *xlator, instance };
            let (values, names) = (values.as_deref(), names.as_deref());
            counters(k, caller, *action, &target, values, names)
        }
        Request::Instance { action, netns, xlator, instance, framework } => {
            let target = Target { netns: *netns, xlator: *xlator, instance };
            self::instance(k, caller, *action, &target, *framework)
        }
    }
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

/// Why a control request was refused (the answer's `error` text).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not JSON, or not one of the requests above (an unknown op, field
    /// or value).
    Invalid(String),
    /// A counter name the kernel's release does not have.
    UnknownStat {
        /// The name given.
        name: String,
        /// The kernel's release.
        release: String,
    },
    /// `set` or `add` without any value.
    NoValues(&'static str),
    /// A field the action does not take (`values` with `reset`, `names`
    /// with `set` or `add`).
    Misplaced {
        /// The field.
        field: &'static str,
        /// The action.
        action: &'static str,
    },
    /// The kernel refused the change.
    State(StateError),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(e) => write!(f, "bad request: {e}"),
            Self::UnknownStat { name, release } => {
                write!(f, "{name} is not a stat of Jool {release}")
            }
            Self::NoValues(action) => write!(
                f,
                "counters {action} needs at least one NAME=VALUE (nothing changed)"
            ),
            Self::Misplaced { field, action } => write!(
                f,
                "counters {action} takes no {field:?} (nothing changed)"
            ),
            Self::State(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for RequestError {}

impl From<StateError> for RequestError {
    fn from(e: StateError) -> Self {
        Self::State(e)
    }
}

/// A request, as sent.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
enum Request {
    Version,
    Instances,
    Dump,
    Counters {
        action: CountersAction,
        netns: Option<NetnsId>,
        xlator: XlatorName,
        #[serde(default = "default_instance")]
        instance: String,
        /// `set`/`add`: `[NAME, VALUE]` pairs.
        values: Option<Vec<(String, u64)>>,
        /// `reset`: the counters to zero (none: all of them).
        names: Option<Vec<String>>,
    },
    Instance {
        action: InstanceAction,
        netns: Option<NetnsId>,
        xlator: XlatorName,
        #[serde(default = "default_instance")]
        instance: String,
        #[serde(default)]
        framework: FrameworkName,
    },
}

/// An instance: `netns` (default: the caller's), `xlator`, `instance`.
#[derive(Debug)]
struct Target<'a> {
    netns: Option<NetnsId>,
    xlator: XlatorName,
    instance: &'a str,
}

fn default_instance() -> String {
    "default".into()
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum XlatorName {
    Siit,
    Nat64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FrameworkName {
    Iptables,
    #[default]
    Netfilter,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum CountersAction {
    Add,
    Reset,
    Set,
}

#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum InstanceAction {
    Add,
    Remove,
}

impl<'a> Target<'a> {
    /// `(netns, xlator, instance name)`.
    fn of(&self, caller: &Caller) -> (NetnsId, Xlator, &'a str) {
        let xlator = match self.xlator {
            XlatorName::Siit => Xlator::Siit,
            XlatorName::Nat64 => Xlator::Nat64,
        };
        (self.netns.unwrap_or(caller.netns), xlator, self.instance)
    }
}

/// The ids of `names` in the kernel's table.
fn stat_ids<'a>(
    k: &Kernel,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<u16>, RequestError> {
    let p = k.profile();
    names
        .map(|name| {
            let s = p.stats.iter().find(|s| s.name == name);
            s.map(|s| s.id).ok_or_else(|| RequestError::UnknownStat {
                name: name.to_owned(),
                release: p.release.clone(),
            })
        })
        .collect()
}

fn counters(
    k: &mut Kernel,
    caller: &Caller,
    action: CountersAction,
    target: &Target<'_>,
    values: Option<&[(String, u64)]>,
    names: Option<&[String]>,
) -> Result<Value, RequestError> {
    let (netns, xlator, name) = target.of(caller);
    let verb = match action {
        CountersAction::Add => "add",
        CountersAction::Reset => "reset",
        CountersAction::Set => "set",
    };
    let misplaced = |field| RequestError::Misplaced { field, action: verb };
    if let CountersAction::Reset = action {
        if values.is_some_and(|v| !v.is_empty()) {
            return Err(misplaced("values"));
        }
        match names.filter(|n| !n.is_empty()) {
            None => k.reset_counters(netns, xlator, name)?,
            Some(names) => {
                let ids = stat_ids(k, names.iter().map(String::as_str))?;
                let zeros: Vec<(u16, u64)> =
                    ids.into_iter().map(|id| (id, 0)).collect();
                k.set_counters(netns, xlator, name, &zeros)?;
            }
        }
        return Ok(json!(true));
    }
    if names.is_some_and(|n| !n.is_empty()) {
        return Err(misplaced("names"));
    }
    let values = values.unwrap_or_default();
    if values.is_empty() {
        return Err(RequestError::NoValues(verb));
    }
    let ids = stat_ids(k, values.iter().map(|(n, _)| n.as_str()))?;
    let pairs: Vec<(u16, u64)> =
        ids.into_iter().zip(values.iter().map(|(_, v)| *v)).collect();
    if let CountersAction::Set = action {
        k.set_counters(netns, xlator, name, &pairs)?;
        return Ok(json!(true));
    }
    // All or nothing: the instance exists, so every add succeeds.
    k.set_counters(netns, xlator, name, &[])?;
    for (id, n) in pairs {
        k.add_counter(netns, xlator, name, id, n)?;
    }
    Ok(json!(true))
}

fn instance(
    k: &mut Kernel,
    caller: &Caller,
    action: InstanceAction,
    target: &Target<'_>,
    framework: FrameworkName,
) -> Result<Value, RequestError> {
    let (netns, xlator, name) = target.of(caller);
    match action {
        InstanceAction::Add => {
            let framework = match framework {
                FrameworkName::Iptables => Framework::Iptables,
                FrameworkName::Netfilter => Framework::Netfilter,
            };
            k.add_instance(netns, xlator, name, framework)?;
        }
        InstanceAction::Remove => {
            k.remove_instance(netns, xlator, name)?;
        }
    }
    Ok(json!(true))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::{kernel::INIT_NETNS, versions::Profile};

    fn setup() -> (std::sync::Arc<Shared>, Caller) {
        let mut k = Kernel::new(Profile::get("4.1.9").unwrap());
        k.add_instance(
            INIT_NETNS,
            Xlator::Siit,
            "default",
            Framework::Netfilter,
        )
        .unwrap();
        (Shared::new(k), Caller::root(INIT_NETNS))
    }

    fn ask(s: &Shared, c: &Caller, req: Value) -> Value {
        let answer = handle(s, c, req.to_string().as_bytes()).unwrap();
        serde_json::from_str(&answer).unwrap()
    }

    fn counter(s: &Shared, name: &str) -> u64 {
        let k = s.kernel();
        let id = k.profile().stats.iter().find(|x| x.name == name).unwrap().id;
        let inst = &k.namespaces().values().next().unwrap().instances;
        inst.values().next().unwrap().counters[usize::from(id)]
    }

    fn set_two(s: &Shared, c: &Caller) {
        let set = json!({"op": "counters", "action": "set", "xlator": "siit",
            "values": [["JSTAT_RECEIVED6", 7], ["JSTAT_SUCCESS", 5]]});
        assert_eq!(ask(s, c, set), json!({"ok": true}));
    }

    #[test]
    fn test_reset_with_names_resets_only_those() {
        let (s, c) = setup();
        set_two(&s, &c);
        let reset = json!({"op": "counters", "action": "reset",
            "xlator": "siit", "names": ["JSTAT_RECEIVED6"]});
        assert_eq!(ask(&s, &c, reset), json!({"ok": true}));
        assert_eq!(counter(&s, "JSTAT_RECEIVED6"), 0);
        assert_eq!(counter(&s, "JSTAT_SUCCESS"), 5);
        let all =
            json!({"op": "counters", "action": "reset", "xlator": "siit"});
        assert_eq!(ask(&s, &c, all), json!({"ok": true}));
        assert_eq!(counter(&s, "JSTAT_SUCCESS"), 0);
    }

    #[test]
    fn test_refused_requests_change_nothing() {
        let (s, c) = setup();
        set_two(&s, &c);
        for req in [
            json!({"op": "counters", "action": "reset", "xlator": "siit",
                "values": [["JSTAT_RECEIVED6", 1]]}),
            json!({"op": "counters", "action": "reset", "xlator": "siit",
                "names": ["JSTAT_NO_SUCH"]}),
            json!({"op": "counters", "action": "set", "xlator": "siit"}),
            json!({"op": "counters", "action": "set", "xlator": "siit",
                "values": []}),
            json!({"op": "counters", "action": "add", "xlator": "siit",
                "values": [["JSTAT_SUCCESS", 1], ["JSTAT_NO_SUCH", 1]]}),
            json!({"op": "counters", "action": "add", "xlator": "siit",
                "names": ["JSTAT_SUCCESS"], "values": [["JSTAT_SUCCESS", 1]]}),
            json!({"op": "counters", "action": "set", "xlator": "siit",
                "value": [["JSTAT_SUCCESS", 1]]}),
            json!({"op": "counters", "action": "zero", "xlator": "siit"}),
            json!({"op": "counters", "action": "reset", "xlator": "x"}),
            json!({"op": "frobnicate"}),
        ] {
            let answer = ask(&s, &c, req.clone());
            assert!(answer["error"].is_string(), "{req}: {answer}");
        }
        assert_eq!(counter(&s, "JSTAT_RECEIVED6"), 7);
        assert_eq!(counter(&s, "JSTAT_SUCCESS"), 5);
    }

    #[test]
    fn test_control_needs_net_admin() {
        let (s, root) = setup();
        let nobody = Caller { net_admin: false, ..root };
        let dump = json!({"op": "dump"}).to_string();
        assert_eq!(handle(&s, &nobody, dump.as_bytes()), Err(Denied));
        let version = json!({"op": "version"});
        assert!(ask(&s, &nobody, version)["ok"]["release"].is_string());
    }
}
