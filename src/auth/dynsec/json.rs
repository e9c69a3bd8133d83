//! Reading JSON objects the way Mosquitto's dynamic security plugin reads them with cJSON:
//! keys are found case-insensitively (`cJSON_GetObjectItem`), a number read as an `int`
//! saturates and truncates, and a field of the wrong type is "missing" or "invalid" exactly
//! where the plugin says so.

use serde_json::{Map, Value};

/// The value of `key` in `object`: an exact match, else the first key equal ignoring ASCII
/// case (cJSON's lookup).
pub fn get<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// A string field: `Ok(None)` when absent, `Err(())` when present but not a string
/// (`json_get_string` with `optional`).
pub fn string<'a>(object: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ()> {
    match get(object, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// An `int` field, `default` when absent or not a number (`json_get_int` with a default, whose
/// result the plugin never checks); a fraction is truncated and a huge value saturates, as
/// cJSON's `valueint`.
pub fn int(object: &Map<String, Value>, key: &str, default: i32) -> i32 {
    match get(object, key).and_then(Value::as_f64) {
        // `as` saturates at the i32 bounds and truncates toward zero, which is cJSON's rule.
        Some(n) => n as i32,
        None => default,
    }
}

/// A boolean field, `default` when absent or not a boolean.
pub fn boolean(object: &Map<String, Value>, key: &str, default: bool) -> bool {
    get(object, key).and_then(Value::as_bool).unwrap_or(default)
}

/// `object` without the keys in `known` (compared ignoring ASCII case): the fields pipit does
/// not read, kept so a save writes them back.
pub fn extra(object: &Map<String, Value>, known: &[&str]) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| !known.iter().any(|n| k.eq_ignore_ascii_case(n)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("the test passes an object"),
        }
    }

    #[test]
    fn keys_match_ignoring_case_and_numbers_read_as_cjson_does() {
        let o = object(json!({"UserName": "a", "priority": 2.9, "big": 1e12, "neg": -3.5}));
        assert_eq!(string(&o, "username"), Ok(Some("a")));
        assert_eq!(string(&o, "missing"), Ok(None));
        assert_eq!(string(&o, "priority"), Err(()));
        assert_eq!(int(&o, "priority", -1), 2);
        assert_eq!(int(&o, "big", -1), i32::MAX);
        assert_eq!(int(&o, "neg", 0), -3);
        assert_eq!(int(&o, "username", -1), -1);
        assert!(boolean(&o, "x", true));
        assert_eq!(extra(&o, &["username", "priority"]).len(), 2);
    }
}
