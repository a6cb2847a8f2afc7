//! The checks [`Suite::load`] makes beyond what serde checks.

use super::{release_target_error, split_words, Delta, Step, Suite};

impl Suite {
    /// Every case and step checked: release selectors, unique case names,
    /// backends, clients, one kind per step, commands, recipes, deltas.
    pub(super) fn validate(&self) -> Result<(), String> {
        if let Some(e) =
            self.suite.releases.iter().find_map(|t| release_target_error(t))
        {
            return Err(format!("suite releases: {e}"));
        }
        let mut names = std::collections::BTreeSet::new();
        for c in &self.cases {
            if let Some(e) =
                c.releases.iter().find_map(|t| release_target_error(t))
            {
                return Err(format!("case '{}': releases: {e}", c.name));
            }
            if !names.insert(&c.name) {
                return Err(format!("two cases named '{}'", c.name));
            }
            for b in &c.backends {
                if !["sim", "kernel"].contains(&b.as_str()) {
                    return Err(format!(
                        "case '{}': unknown backend '{b}'",
                        c.name
                    ));
                }
            }
            for cl in &c.clients {
                if !["jool-stats", "real"].contains(&cl.as_str()) {
                    return Err(format!(
                        "case '{}': unknown client '{cl}'",
                        c.name
                    ));
                }
            }
            for (i, s) in c.steps.iter().enumerate() {
                validate_step(s).map_err(|e| {
                    format!("case '{}', step {}: {e}", c.name, i + 1)
                })?;
            }
        }
        Ok(())
    }
}

fn validate_step(s: &Step) -> Result<(), String> {
    let kinds = [s.run.is_some(), s.topology.is_some(), s.traffic.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        return Err("needs exactly one of run, topology, traffic".into());
    }
    if let Some(r) = &s.run {
        let words = split_words(r).map_err(|e| e.to_string())?;
        if !matches!(
            words.first().map(String::as_str),
            Some("jool" | "jool_siit")
        ) {
            return Err(format!(
                "'{r}': commands start with jool or jool_siit"
            ));
        }
    }
    if let Some(t) = &s.topology {
        super::super::recipes::topology(t)
            .ok_or_else(|| format!("unknown topology '{t}'"))?;
    }
    if let Some(t) = &s.traffic {
        super::super::recipes::traffic(t)
            .ok_or_else(|| format!("unknown traffic recipe '{t}'"))?;
    }
    for (i, w) in s.when.iter().enumerate() {
        let at = || format!("when {}", i + 1);
        if w.releases.is_empty() {
            return Err(format!("{}: releases is empty", at()));
        }
        if let Some(e) =
            w.releases.iter().find_map(|t| release_target_error(t))
        {
            return Err(format!("{}: releases: {e}", at()));
        }
        if s.traffic.is_none() && !w.deltas.is_empty() {
            return Err(format!("{}: deltas belong to traffic steps", at()));
        }
        for (name, d) in &w.deltas {
            Delta::parse(d).ok_or_else(|| {
                format!(
                    "{}: delta of {name}: '{d}' is not N, ==N or >=N",
                    at()
                )
            })?;
        }
    }
    if s.traffic.is_none() && !s.deltas.is_empty() {
        return Err("deltas belong to traffic steps".into());
    }
    for (name, d) in &s.deltas {
        Delta::parse(d).ok_or_else(|| {
            format!("delta of {name}: '{d}' is not N, ==N or >=N")
        })?;
    }
    if s.netns() == "new" && s.topology.is_some() {
        return Err("a topology cannot live in netns 'new'".into());
    }
    Ok(())
}
