//! Exclusion rules, compiled: conditions over record fields with the meaning of KQL
//! operators, so the same rule can be written into a Sentinel query unchanged in meaning.
//!
//! A condition on a field the record lacks is false (as a KQL comparison with an empty
//! string is); `not` of it is then true. A field with several values (an array) satisfies
//! an operator when any of its values does. Comparisons ignore ASCII case, as `=~`, `in~`,
//! `has`, `startswith` and `endswith` do.

use ipnet::IpNet;

use crate::normalize::parse_ip;
use crate::record::{FieldTable, ScannedRecord, Slot};
use crate::settings::{ConditionConfig, ExclusionConfig};

/// A compiled exclusion rule.
#[derive(Debug, Clone)]
pub struct Exclusion {
    pub name: String,
    pub reason: String,
    pub condition: Condition,
}

/// A compiled condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    Field {
        slot: Slot,
        field: String,
        test: Test,
    },
}

/// A test of one field value. Texts are stored lower-cased.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// KQL `=~`.
    Equals(String),
    /// KQL `in~`.
    OneOf(Vec<String>),
    /// KQL `has`.
    Has(String),
    /// KQL `has_any`.
    HasAny(Vec<String>),
    /// KQL `startswith`.
    StartsWith(String),
    /// KQL `endswith`.
    EndsWith(String),
    /// KQL `ipv4_is_in_range` / `ipv6_is_in_range`.
    InCidr(Vec<IpNet>),
}

/// An exclusion rule that could not be compiled; names the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExclusionError {
    pub exclusion: String,
    pub message: String,
}

impl std::fmt::Display for ExclusionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exclusion {:?}: {}", self.exclusion, self.message)
    }
}

impl Exclusion {
    /// Compiles a rule, interning the fields it reads into `fields`.
    pub fn compile(
        config: &ExclusionConfig,
        fields: &mut FieldTable,
    ) -> Result<Exclusion, ExclusionError> {
        let error = |message: String| ExclusionError {
            exclusion: config.name.clone(),
            message,
        };
        if config.name.trim().is_empty() {
            return Err(error("an exclusion needs a name".into()));
        }
        let condition = compile_condition(&config.when, fields).map_err(error)?;
        Ok(Exclusion {
            name: config.name.clone(),
            reason: config.reason.clone(),
            condition,
        })
    }
}

fn compile_condition(c: &ConditionConfig, fields: &mut FieldTable) -> Result<Condition, String> {
    let lower = |s: &String| s.to_ascii_lowercase();
    let lower_all = |v: &Vec<String>| v.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>();
    let mut tests: Vec<Test> = Vec::new();
    let mut groups: Vec<Condition> = Vec::new();

    if let Some(list) = &c.all {
        groups.push(Condition::All(compile_list(list, fields, "all")?));
    }
    if let Some(list) = &c.any {
        groups.push(Condition::Any(compile_list(list, fields, "any")?));
    }
    if let Some(inner) = &c.not {
        groups.push(Condition::Not(Box::new(compile_condition(inner, fields)?)));
    }
    if let Some(v) = &c.equals {
        tests.push(Test::Equals(lower(v)));
    }
    if let Some(v) = &c.one_of {
        tests.push(Test::OneOf(lower_all(v)));
    }
    if let Some(v) = &c.has {
        tests.push(Test::Has(lower(v)));
    }
    if let Some(v) = &c.has_any {
        tests.push(Test::HasAny(lower_all(v)));
    }
    if let Some(v) = &c.startswith {
        tests.push(Test::StartsWith(lower(v)));
    }
    if let Some(v) = &c.endswith {
        tests.push(Test::EndsWith(lower(v)));
    }
    if let Some(v) = &c.in_cidr {
        let nets = v
            .iter()
            .map(|n| parse_network(n).ok_or_else(|| format!("{n:?} is not a network (CIDR)")))
            .collect::<Result<Vec<_>, _>>()?;
        tests.push(Test::InCidr(nets));
    }

    match (groups.len() + tests.len(), &c.field) {
        (0, _) => Err(
            "a condition needs one of all, any, not, equals, in, has, has_any, \
                       startswith, endswith, in_cidr"
                .into(),
        ),
        (n, _) if n > 1 => Err("a condition takes exactly one operator; combine several \
                                 with all or any"
            .into()),
        (_, Some(field)) if tests.len() == 1 => {
            let test = tests.pop().expect("one test");
            if let Test::OneOf(v) | Test::HasAny(v) = &test
                && v.is_empty()
            {
                return Err(format!("the list for field {field:?} is empty"));
            }
            Ok(Condition::Field {
                slot: fields.intern(field),
                field: field.clone(),
                test,
            })
        }
        (_, None) if tests.len() == 1 => Err("this operator needs a field".into()),
        (_, Some(field)) => Err(format!(
            "field {field:?} goes with a test, not with all/any/not"
        )),
        (_, None) => Ok(groups.pop().expect("one group")),
    }
}

fn compile_list(
    list: &[ConditionConfig],
    fields: &mut FieldTable,
    op: &str,
) -> Result<Vec<Condition>, String> {
    if list.is_empty() {
        return Err(format!("{op} needs at least one condition"));
    }
    list.iter().map(|c| compile_condition(c, fields)).collect()
}

/// Parses a network; a bare address is a network of one.
fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| parse_ip(text).map(IpNet::from))
}

impl Condition {
    /// Whether the record satisfies the condition.
    pub fn holds(&self, record: &ScannedRecord<'_>) -> bool {
        match self {
            Condition::All(list) => list.iter().all(|c| c.holds(record)),
            Condition::Any(list) => list.iter().any(|c| c.holds(record)),
            Condition::Not(inner) => !inner.holds(record),
            Condition::Field { slot, test, .. } => {
                record.values(*slot).any(|(_, value)| test.matches(value))
            }
        }
    }
}

impl Test {
    /// Whether one field value passes the test.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Test::Equals(want) => value.eq_ignore_ascii_case(want),
            Test::OneOf(list) => list.iter().any(|want| value.eq_ignore_ascii_case(want)),
            Test::Has(term) => has_term(value, term),
            Test::HasAny(terms) => terms.iter().any(|t| has_term(value, t)),
            Test::StartsWith(prefix) => value
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
            Test::EndsWith(suffix) => value
                .len()
                .checked_sub(suffix.len())
                .and_then(|start| value.get(start..))
                .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix)),
            Test::InCidr(nets) => {
                parse_ip(value).is_some_and(|addr| nets.iter().any(|n| n.contains(&addr)))
            }
        }
    }
}

/// KQL `has`: `term` occurs in `value`, ignoring case, and is not part of a longer run of
/// alphanumerics (`nc` is in `nc -zv`, not in `rsync`). `term` is lower-case.
pub fn has_term(value: &str, term: &str) -> bool {
    if term.is_empty() {
        return false;
    }
    let hay = value.as_bytes();
    let needle = term.as_bytes();
    let is_term_char = |b: u8| b.is_ascii_alphanumeric();
    let mut start = 0;
    while start + needle.len() <= hay.len() {
        let window = &hay[start..start + needle.len()];
        if window.eq_ignore_ascii_case(needle) {
            let before_ok = start == 0 || !is_term_char(needle[0]) || !is_term_char(hay[start - 1]);
            let end = start + needle.len();
            let after_ok = end == hay.len()
                || !is_term_char(needle[needle.len() - 1])
                || !is_term_char(hay[end]);
            if before_ok && after_ok {
                return true;
            }
        }
        start += 1;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordScanner;
    use crate::settings::SettingsConfig;

    fn holds(rule_toml: &str, record: &str) -> bool {
        let settings = SettingsConfig::parse(&format!(
            "[[exclusions]]\nname=\"t\"\nreason=\"r\"\n{rule_toml}"
        ))
        .expect("rule parses");
        let mut fields = FieldTable::default();
        let rule = Exclusion::compile(&settings.exclusions[0], &mut fields).expect("compiles");
        let mut scanner = RecordScanner::default();
        let scanned = scanner
            .scan(&fields, record.as_bytes())
            .expect("record reads");
        rule.condition.holds(&scanned)
    }

    #[test]
    fn has_matches_whole_terms_only() {
        assert!(has_term("nc -zv 1.2.3.4 80", "nc"));
        assert!(!has_term("rsync -a x y", "nc"));
        assert!(has_term(
            "/bin/sh /opt/backup/backup_script.sh --port 7000",
            "/opt/backup/backup_script.sh"
        ));
        assert!(!has_term(
            "sh /tmp/backup_script.sh",
            "/opt/backup/backup_script.sh"
        ));
        assert!(has_term("Run NETSTAT now", "netstat"));
        assert!(!has_term("", "x"));
    }

    #[test]
    fn operators_ignore_case_like_kql() {
        assert!(holds(
            r#"when = { field = "a", equals = "NetStat" }"#,
            r#"{"a":"netstat"}"#
        ));
        assert!(!holds(
            r#"when = { field = "a", equals = "netstat" }"#,
            r#"{"a":"netstat2"}"#
        ));
        assert!(holds(
            r#"when = { field = "a", in = ["x", "Y"] }"#,
            r#"{"a":"y"}"#
        ));
        assert!(holds(
            r#"when = { field = "a", startswith = "/USR/" }"#,
            r#"{"a":"/usr/bin/nc"}"#
        ));
        assert!(holds(
            r#"when = { field = "a", endswith = "/nc" }"#,
            r#"{"a":"/usr/bin/NC"}"#
        ));
        assert!(!holds(
            r#"when = { field = "a", endswith = "/nc" }"#,
            r#"{"a":"/usr/bin/rsync"}"#
        ));
    }

    #[test]
    fn cidr_and_boolean_combinations() {
        let rule = r#"when.all = [ { field = "ip", in_cidr = ["10.0.0.0/8", "2001:db8::/32"] },
                                     { not = { field = "user", equals = "root" } } ]"#;
        assert!(holds(rule, r#"{"ip":"10.1.2.3","user":"svc"}"#));
        assert!(holds(rule, r#"{"ip":"::ffff:10.1.2.3"}"#));
        assert!(!holds(rule, r#"{"ip":"10.1.2.3","user":"root"}"#));
        assert!(!holds(rule, r#"{"ip":"11.1.2.3","user":"svc"}"#));
        assert!(holds(rule, r#"{"ip":"2001:db8::5","user":"svc"}"#));
        let any = r#"when.any = [ { field = "a", equals = "x" }, { field = "b", equals = "y" } ]"#;
        assert!(holds(any, r#"{"b":"y"}"#));
        assert!(!holds(any, r#"{"c":"x"}"#));
    }

    #[test]
    fn missing_fields_fail_and_arrays_match_any_element() {
        assert!(!holds(
            r#"when = { field = "a", equals = "" }"#,
            r#"{"b":"x"}"#
        ));
        assert!(holds(
            r#"when = { not = { field = "a", equals = "x" } }"#,
            r#"{"b":"x"}"#
        ));
        assert!(holds(
            r#"when = { field = "a", has = "evil" }"#,
            r#"{"a":["good","evil one"]}"#
        ));
    }

    #[test]
    fn malformed_rules_are_errors_naming_the_rule() {
        let compile = |rule: &str| {
            let settings = SettingsConfig::parse(&format!(
                "[[exclusions]]\nname=\"bad-rule\"\nreason=\"r\"\n{rule}"
            ))
            .unwrap();
            Exclusion::compile(&settings.exclusions[0], &mut FieldTable::default()).unwrap_err()
        };
        let e = compile(r#"when = { field = "a" }"#);
        assert_eq!(e.exclusion, "bad-rule");
        assert!(e.message.contains("needs one of"), "{e}");
        assert!(
            compile(r#"when = { field = "a", equals = "x", has = "y" }"#)
                .message
                .contains("exactly one")
        );
        assert!(
            compile(r#"when = { equals = "x" }"#)
                .message
                .contains("needs a field")
        );
        assert!(
            compile(r#"when = { field = "a", in_cidr = ["10.0.0.0/33"] }"#)
                .message
                .contains("10.0.0.0/33")
        );
        assert!(
            compile(r#"when = { all = [] }"#)
                .message
                .contains("at least one")
        );
    }
}
