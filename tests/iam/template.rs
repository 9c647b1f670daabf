//! infra/template.yaml read as data: functions, their roles' statements and
//! their environment, with CloudFormation's intrinsic functions kept symbolic.

use serde_yaml::Value;
use std::collections::BTreeMap;

pub struct Template {
    root: Value,
}

/// One statement of a role's policy, its resources as symbolic ARNs.
#[derive(Clone, Debug)]
pub struct Statement {
    pub sid: String,
    pub allow: bool,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// `Condition`, as `<operator> <key> <value>` lines.
    pub conditions: Vec<String>,
}

impl Template {
    pub fn load() -> Template {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Template { root: serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} is YAML: {e}")) }
    }

    fn resource(&self, logical_id: &str) -> &Value {
        let resource = &self.root["Resources"][logical_id];
        assert!(resource.is_mapping(), "the template has no resource {logical_id}");
        resource
    }

    /// The logical ids of every resource of `kind` (e.g. `AWS::Serverless::Function`).
    pub fn resources_of(&self, kind: &str) -> Vec<String> {
        let resources = self.root["Resources"].as_mapping().expect("Resources");
        resources.iter().filter(|(_, r)| r["Type"].as_str() == Some(kind)).filter_map(|(id, _)| id.as_str().map(str::to_string)).collect()
    }

    /// The logical id of the role `function` runs as (`Role: !GetAtt <Role>.Arn`).
    pub fn role_of(&self, function: &str) -> String {
        let role = expr(&self.resource(function)["Properties"]["Role"]);
        role.strip_prefix("${").and_then(|r| r.strip_suffix(".Arn}")).unwrap_or_else(|| panic!("{function}'s Role is a role's ARN: {role}")).to_string()
    }

    /// Every statement that applies to `role`: its inline policies and the
    /// `AWS::IAM::Policy` resources attached to it.
    pub fn statements_of(&self, role: &str) -> Vec<Statement> {
        let mut documents: Vec<&Value> = self.resource(role)["Properties"]["Policies"]
            .as_sequence()
            .map(|policies| policies.iter().map(|p| &p["PolicyDocument"]).collect())
            .unwrap_or_default();
        for policy in self.resources_of("AWS::IAM::Policy") {
            let properties = &self.resource(&policy)["Properties"];
            let roles = properties["Roles"].as_sequence().map(|r| r.iter().map(expr).collect::<Vec<_>>()).unwrap_or_default();
            if roles.contains(&format!("${{{role}}}")) {
                documents.push(&properties["PolicyDocument"]);
            }
        }
        documents
            .into_iter()
            .flat_map(|document| document["Statement"].as_sequence().cloned().unwrap_or_default())
            .map(|statement| Statement {
                sid: statement["Sid"].as_str().unwrap_or("(no Sid)").to_string(),
                allow: statement["Effect"].as_str() == Some("Allow"),
                actions: one_or_many(&statement["Action"]),
                resources: one_or_many(&statement["Resource"]),
                conditions: statement["Condition"]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .flat_map(|(operator, tests)| {
                        let operator = expr(operator);
                        tests.as_mapping().into_iter().flatten().map(move |(k, v)| format!("{operator} {} {}", expr(k), one_or_many(v).join(",")))
                    })
                    .collect(),
            })
            .collect()
    }

    /// The environment `function` gets: `Globals` overlaid with its own, symbolic.
    pub fn environment_of(&self, function: &str) -> BTreeMap<String, String> {
        let mut variables = variables_of(&self.root["Globals"]["Function"]["Environment"]["Variables"]);
        variables.extend(variables_of(&self.resource(function)["Properties"]["Environment"]["Variables"]));
        variables
    }
}

fn variables_of(map: &Value) -> BTreeMap<String, String> {
    map.as_mapping().into_iter().flatten().filter_map(|(k, v)| Some((k.as_str()?.to_string(), expr(v)))).collect()
}

fn one_or_many(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(expr).collect(),
        Value::Null => vec![],
        other => vec![expr(other)],
    }
}

/// A template value as text with its intrinsic functions kept symbolic:
/// `!Ref X` is `${X}`, `!GetAtt X.Arn` is `${X.Arn}`, `!Sub s` is `s`, the
/// `${...}` in it left as they are. Any other function is kept as written.
pub fn expr(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            match (tag.trim_start_matches('!'), &tagged.value) {
                ("Ref", Value::String(name)) => format!("${{{name}}}"),
                ("GetAtt", Value::String(attribute)) => format!("${{{attribute}}}"),
                ("GetAtt", Value::Sequence(parts)) => format!("${{{}}}", parts.iter().map(expr).collect::<Vec<_>>().join(".")),
                ("Sub", Value::String(text)) => text.clone(),
                // Kept as written (`!If [...]`): matches no name or ARN, so a grant or a
                // binding made of one fails the coverage test plainly, not here.
                (name, value) => format!("!{name} {value:?}"),
            }
        }
        other => format!("{other:?}"),
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[test]
fn iam_wildcards_match_as_iam_does() {
    assert!(glob("${PackageBucket.Arn}/tenants/*", "${PackageBucket.Arn}/tenants/t1/packages/p1.tar.gz"));
    assert!(!glob("${PackageBucket.Arn}/tenants/*", "${PackageBucket.Arn}/other/x"));
    assert!(glob("sqs:*", "sqs:SendMessage") && glob("a*b*c", "aXbYc") && !glob("a*b", "ac"));
    assert!(glob("${Table.Arn}", "${Table.Arn}") && !glob("${Table.Arn}", "${Table.Arn}/index/gsi1"));
}
