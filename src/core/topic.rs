//! Topic names and topic filters: validation, level splitting, `$` topics and `$share/`.
//!
//! A topic name (what a PUBLISH carries) never holds wildcards; a topic filter (what a
//! SUBSCRIBE carries) may hold `+` as a whole level and `#` as the whole last level. Both are
//! non-empty UTF-8 (the codec has already rejected bad UTF-8 and U+0000).

/// Limits on topic names and filters, from `Config`.
#[derive(Clone, Copy, Debug)]
pub struct TopicLimits {
    /// Longest name or filter, in bytes.
    pub max_length: usize,
    /// Most `/`-separated levels.
    pub max_levels: usize,
}

/// Why a topic name or filter was refused; names the rule broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// Zero-length name or filter [MQTT-4.7.3-1].
    Empty,
    /// A wildcard character in a topic name [MQTT-3.3.2-2].
    WildcardInName,
    /// `+` or `#` not alone in its level, or `#` not last [MQTT-4.7.1-2] [MQTT-4.7.1-3].
    BadWildcard,
    /// Longer than the configured maximum length or level count.
    TooLong,
    /// A `$share/` filter without a valid group name or filter.
    BadShare,
}

/// Checks a topic name from a PUBLISH or a will.
pub fn validate_name(name: &str, limits: TopicLimits) -> Result<(), TopicError> {
    if name.is_empty() {
        return Err(TopicError::Empty);
    }
    let mut level_count = 1;
    for b in name.bytes() {
        match b {
            b'/' => level_count += 1,
            // [MQTT-3.3.2-2] The Topic Name in a PUBLISH must not contain wildcards.
            b'+' | b'#' => return Err(TopicError::WildcardInName),
            _ => {}
        }
    }
    if name.len() > limits.max_length || level_count > limits.max_levels {
        return Err(TopicError::TooLong);
    }
    Ok(())
}

/// Checks a topic filter from a SUBSCRIBE or UNSUBSCRIBE (without any `$share/` prefix).
pub fn validate_filter(filter: &str, limits: TopicLimits) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::Empty);
    }
    if filter.len() > limits.max_length || levels(filter).count() > limits.max_levels {
        return Err(TopicError::TooLong);
    }
    let mut rest = levels(filter).peekable();
    while let Some(level) = rest.next() {
        let is_last = rest.peek().is_none();
        match level {
            "+" => {}
            // [MQTT-4.7.1-2] `#` must be the last character, alone in its level.
            "#" if is_last => {}
            // [MQTT-4.7.1-3] `+` must occupy an entire level.
            _ if level.contains(['+', '#']) => return Err(TopicError::BadWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// A subscription filter split into its optional shared-subscription group and the filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitFilter<'a> {
    /// The `{ShareName}` of `$share/{ShareName}/{filter}`, if it is a shared subscription.
    pub share_group: Option<&'a str>,
    /// The filter matched against topic names.
    pub filter: &'a str,
}

/// Splits `$share/{group}/{filter}` and validates both parts; a plain filter passes through.
pub fn split_shared(raw: &str, limits: TopicLimits) -> Result<SplitFilter<'_>, TopicError> {
    let Some(rest) = raw.strip_prefix("$share/") else {
        validate_filter(raw, limits)?;
        return Ok(SplitFilter {
            share_group: None,
            filter: raw,
        });
    };
    // [MQTT-4.8.2-1] The ShareName must be at least one character, without `/`, `+` or `#`;
    // [MQTT-4.8.2-2] it must be followed by `/` and a filter.
    let Some((group, filter)) = rest.split_once('/') else {
        return Err(TopicError::BadShare);
    };
    if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
        return Err(TopicError::BadShare);
    }
    validate_filter(filter, limits)?;
    Ok(SplitFilter {
        share_group: Some(group),
        filter,
    })
}

/// The `/`-separated levels of a name or filter (an empty level is a level).
pub fn levels(topic: &str) -> Levels<'_> {
    Levels { rest: Some(topic) }
}

/// Iterator over the levels of a topic; a byte scan, cheaper than `str::split` on the hot
/// path (topics are short and `/` is ASCII, so every split point is a char boundary).
#[derive(Clone, Debug)]
pub struct Levels<'a> {
    rest: Option<&'a str>,
}

impl<'a> Iterator for Levels<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match s.bytes().position(|b| b == b'/') {
            Some(i) => {
                self.rest = Some(&s[i + 1..]);
                Some(&s[..i])
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// Whether topic name `name` matches topic filter `filter`, level by level: `+` matches one
/// level, a trailing `#` the rest (the parent level too [MQTT-4.7.1-2]), and a leading
/// wildcard no `$` topic [MQTT-4.7.2-1].
pub fn matches(filter: &str, name: &str) -> bool {
    if is_dollar(name) && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut names = levels(name);
    for f in levels(filter) {
        if f == "#" {
            return true;
        }
        match names.next() {
            Some(n) if f == "+" || f == n => {}
            _ => return false,
        }
    }
    names.next().is_none()
}

/// Whether a topic name is a `$` topic, which leading wildcards do not match [MQTT-4.7.2-1].
pub fn is_dollar(name: &str) -> bool {
    name.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TopicLimits = TopicLimits {
        max_length: 100,
        max_levels: 8,
    };

    #[test]
    fn names() {
        assert_eq!(validate_name("a/b", LIMITS), Ok(()));
        assert_eq!(validate_name("/", LIMITS), Ok(()));
        assert_eq!(validate_name("", LIMITS), Err(TopicError::Empty));
        assert_eq!(
            validate_name("a/+", LIMITS),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(
            validate_name("a/#", LIMITS),
            Err(TopicError::WildcardInName)
        );
        assert_eq!(
            validate_name("a/b/c/d/e/f/g/h/i", LIMITS),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn filters() {
        for ok in ["#", "+", "a/+/b", "a/#", "+/+", "/+", "$SYS/#", "a//b"] {
            assert_eq!(validate_filter(ok, LIMITS), Ok(()), "{ok}");
        }
        for bad in ["a/#/b", "a#", "a/b+", "+a", "##", "#/"] {
            assert_eq!(
                validate_filter(bad, LIMITS),
                Err(TopicError::BadWildcard),
                "{bad}"
            );
        }
        assert_eq!(validate_filter("", LIMITS), Err(TopicError::Empty));
    }

    #[test]
    fn level_iteration() {
        fn all(t: &str) -> Vec<&str> {
            levels(t).collect()
        }
        assert_eq!(all("a/b/c"), ["a", "b", "c"]);
        assert_eq!(all("/a/"), ["", "a", ""]);
        assert_eq!(all(""), [""]);
        assert_eq!(all("ü/ß"), ["ü", "ß"]);
    }

    #[test]
    fn shared() {
        let s = split_shared("$share/g/a/+", LIMITS).unwrap();
        assert_eq!(s.share_group, Some("g"));
        assert_eq!(s.filter, "a/+");
        assert_eq!(split_shared("a/b", LIMITS).unwrap().share_group, None);
        assert_eq!(split_shared("$share/g", LIMITS), Err(TopicError::BadShare));
        assert_eq!(split_shared("$share//a", LIMITS), Err(TopicError::BadShare));
        assert_eq!(
            split_shared("$share/g+/a", LIMITS),
            Err(TopicError::BadShare)
        );
    }
}
