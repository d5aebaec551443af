//! Reasoning controls → Gemini `thinkingConfig` (decisions §5). Precedence:
//! `google.thinking_config` (under `extra_body` wins over top level; snake or camel case) >
//! HAJIMI's `thinking_budget` > `reasoning_effort`. Gemini 2.x takes a budget, 3.x a level,
//! never both; values are clamped to what the model family accepts; models that cannot think
//! never get a `thinkingConfig`. With `ENABLE_THINKING`, thinking models get `includeThoughts`,
//! unless the client excluded reasoning from the answer (`includeThoughts: false`, same effort).

use serde_json::Value;

use crate::error::GatewayError;
use crate::translate::model_name::gemini_version;
use crate::wire::gemini::ThinkingConfig;

/// A model's thinking family, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Pro25,
    Flash25,
    FlashLite25,
    /// Other 2.x thinking models (`…-thinking-…`): budgets, not clamped.
    Budget,
    Pro3,
    Flash3,
}

pub fn family(model: &str) -> Option<Family> {
    let (major, minor) = gemini_version(model).unwrap_or((0, 0));
    let m = model.to_ascii_lowercase();
    if major >= 3 {
        return Some(if m.contains("pro") {
            Family::Pro3
        } else {
            Family::Flash3
        });
    }
    if (major, minor) >= (2, 5) {
        return Some(if m.contains("flash-lite") {
            Family::FlashLite25
        } else if m.contains("pro") {
            Family::Pro25
        } else {
            Family::Flash25
        });
    }
    m.contains("thinking").then_some(Family::Budget)
}

/// Whether a model can think: the model list's `thinking` flag when known, else the family.
pub fn can_think(model: &str, listed: Option<bool>) -> bool {
    listed.unwrap_or_else(|| family(model).is_some())
}

/// What the client asked for.
#[derive(Debug, Default)]
pub struct Requested<'a> {
    pub reasoning_effort: Option<&'a str>,
    pub thinking_budget: Option<i64>,
    /// `google.thinking_config` (top level) and `extra_body.google.thinking_config`.
    pub google: Option<&'a Value>,
    pub extra_body_google: Option<&'a Value>,
    /// `include_reasoning: false` / `reasoning.exclude`: thoughts are not asked for (the
    /// budget or level stays what the rest implies).
    pub exclude_thoughts: bool,
}

pub fn thinking_config(
    model: &str,
    listed_thinks: Option<bool>,
    enable_thinking: bool,
    req: &Requested<'_>,
) -> Result<Option<ThinkingConfig>, GatewayError> {
    if !can_think(model, listed_thinks) {
        return Ok(None);
    }
    let fam = family(model).unwrap_or(Family::Budget);
    let uses_level = matches!(fam, Family::Pro3 | Family::Flash3);

    let explicit = req
        .extra_body_google
        .and_then(|g| field(g, "thinking_config", "thinkingConfig"))
        .or_else(|| {
            req.google
                .and_then(|g| field(g, "thinking_config", "thinkingConfig"))
        });

    let mut cfg = ThinkingConfig::default();
    if let Some(tc) = explicit {
        let budget = field(tc, "thinking_budget", "thinkingBudget").and_then(Value::as_i64);
        let level = field(tc, "thinking_level", "thinkingLevel")
            .and_then(Value::as_str)
            .map(str::to_ascii_uppercase);
        cfg.include_thoughts =
            field(tc, "include_thoughts", "includeThoughts").and_then(Value::as_bool);
        match (uses_level, level, budget) {
            (true, Some(l), _) => cfg.thinking_level = Some(clamp_level(fam, &l)?),
            (true, None, Some(b)) => cfg.thinking_budget = Some(b),
            (false, _, Some(b)) => cfg.thinking_budget = Some(clamp_budget(fam, b)),
            (false, Some(l), None) => {
                cfg.thinking_budget = Some(clamp_budget(
                    fam,
                    budget_for_effort(fam, &l.to_ascii_lowercase())?,
                ));
            }
            _ => {}
        }
    } else if let Some(b) = req.thinking_budget {
        if uses_level {
            cfg.thinking_budget = Some(b);
        } else {
            cfg.thinking_budget = Some(clamp_budget(fam, b));
        }
    } else if let Some(effort) = req.reasoning_effort {
        let effort = effort.to_ascii_lowercase();
        if uses_level {
            cfg.thinking_level = Some(level_for_effort(fam, &effort)?.to_owned());
        } else {
            cfg.thinking_budget = Some(clamp_budget(fam, budget_for_effort(fam, &effort)?));
        }
    }

    let thinking_off = cfg.thinking_budget == Some(0);
    if cfg.include_thoughts.is_none() && enable_thinking && !thinking_off {
        cfg.include_thoughts = Some(true);
    }
    if req.exclude_thoughts && cfg.include_thoughts == Some(true) {
        cfg.include_thoughts = Some(false);
    }
    if cfg == ThinkingConfig::default() {
        return Ok(None);
    }
    Ok(Some(cfg))
}

fn field<'v>(v: &'v Value, snake: &str, camel: &str) -> Option<&'v Value> {
    v.get(snake)
        .or_else(|| v.get(camel))
        .filter(|x| !x.is_null())
}

fn invalid_effort(effort: &str) -> GatewayError {
    GatewayError::bad_param(
        format!(
            "不支持的 reasoning_effort：{effort:?} / Unsupported reasoning_effort {effort:?}: use none, minimal, low, medium, high, xhigh or max"
        ),
        "reasoning_effort",
    )
}

/// Effort → budget for 2.x (decisions §5).
pub fn budget_for_effort(fam: Family, effort: &str) -> Result<i64, GatewayError> {
    Ok(match effort {
        "none" => match fam {
            Family::Pro25 => 128,
            _ => 0,
        },
        "minimal" | "low" => 1024,
        "medium" => 8192,
        "high" => 24_576,
        "xhigh" | "max" => match fam {
            Family::Pro25 => 32_768,
            _ => 24_576,
        },
        other => return Err(invalid_effort(other)),
    })
}

/// Effort → level for 3.x, clamped to the family (3 Pro: LOW/HIGH; 3 Flash: all four).
pub fn level_for_effort(fam: Family, effort: &str) -> Result<&'static str, GatewayError> {
    let pro = fam == Family::Pro3;
    Ok(match effort {
        "none" | "minimal" => {
            if pro {
                "LOW"
            } else {
                "MINIMAL"
            }
        }
        "low" => "LOW",
        "medium" => {
            if pro {
                "HIGH"
            } else {
                "MEDIUM"
            }
        }
        "high" | "xhigh" | "max" => "HIGH",
        other => return Err(invalid_effort(other)),
    })
}

fn clamp_level(fam: Family, level: &str) -> Result<String, GatewayError> {
    let effort = match level {
        "MINIMAL" => "minimal",
        "LOW" => "low",
        "MEDIUM" => "medium",
        "HIGH" => "high",
        other => {
            return Err(GatewayError::bad_param(
                format!(
                    "不支持的 thinking_level：{other} / Unsupported thinking_level {other}: use MINIMAL, LOW, MEDIUM or HIGH"
                ),
                "thinking_config",
            ));
        }
    };
    level_for_effort(fam, effort).map(str::to_owned)
}

/// Clamps a budget to the family's range; `-1` (dynamic) passes.
pub fn clamp_budget(fam: Family, budget: i64) -> i64 {
    if budget == -1 {
        return -1;
    }
    match fam {
        Family::Pro25 => budget.clamp(128, 32_768),
        Family::Flash25 => budget.clamp(0, 24_576),
        Family::FlashLite25 => {
            if budget <= 0 {
                0
            } else {
                budget.clamp(512, 24_576)
            }
        }
        _ => budget.max(-1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(model: &str, enable: bool, req: &Requested<'_>) -> Option<ThinkingConfig> {
        thinking_config(model, None, enable, req).expect("valid")
    }

    fn effort(e: &str) -> Requested<'_> {
        Requested {
            reasoning_effort: Some(e),
            ..Requested::default()
        }
    }

    #[test]
    fn non_thinking_models_never_get_a_thinking_config() {
        assert_eq!(cfg("gemini-2.0-flash", true, &effort("high")), None);
        assert_eq!(
            thinking_config("gemini-2.5-flash", Some(false), true, &effort("high")).expect("ok"),
            None
        );
    }

    #[test]
    fn enable_thinking_asks_for_thoughts_on_thinking_models() {
        let c = cfg("gemini-2.5-flash", true, &Requested::default()).expect("some");
        assert_eq!(
            (c.include_thoughts, c.thinking_budget, c.thinking_level),
            (Some(true), None, None)
        );
        assert_eq!(cfg("gemini-2.5-flash", false, &Requested::default()), None);
    }

    #[test]
    fn effort_maps_to_budgets_on_2x() {
        let b = |m: &str, e: &str| cfg(m, true, &effort(e)).and_then(|c| c.thinking_budget);
        assert_eq!(b("gemini-2.5-flash", "none"), Some(0));
        assert_eq!(b("gemini-2.5-pro", "none"), Some(128));
        assert_eq!(b("gemini-2.5-flash-lite", "none"), Some(0));
        assert_eq!(b("gemini-2.5-flash", "minimal"), Some(1024));
        assert_eq!(b("gemini-2.5-flash", "low"), Some(1024));
        assert_eq!(b("gemini-2.5-flash", "medium"), Some(8192));
        assert_eq!(b("gemini-2.5-flash", "high"), Some(24_576));
        assert_eq!(b("gemini-2.5-flash", "xhigh"), Some(24_576));
        assert_eq!(b("gemini-2.5-pro", "max"), Some(32_768));
        let off = cfg("gemini-2.5-flash", true, &effort("none")).expect("some");
        assert_eq!(
            off.include_thoughts, None,
            "no thoughts requested when thinking is off"
        );
    }

    #[test]
    fn effort_maps_to_clamped_levels_on_3x() {
        let l = |m: &str, e: &str| cfg(m, true, &effort(e)).and_then(|c| c.thinking_level);
        assert_eq!(l("gemini-3-pro-preview", "minimal").as_deref(), Some("LOW"));
        assert_eq!(l("gemini-3-pro-preview", "medium").as_deref(), Some("HIGH"));
        assert_eq!(
            l("gemini-3-flash-preview", "none").as_deref(),
            Some("MINIMAL")
        );
        assert_eq!(
            l("gemini-3-flash-preview", "medium").as_deref(),
            Some("MEDIUM")
        );
        assert_eq!(l("gemini-3-flash-preview", "max").as_deref(), Some("HIGH"));
        let c = cfg("gemini-3-pro-preview", true, &effort("high")).expect("some");
        assert_eq!(c.thinking_budget, None, "never both budget and level");
    }

    #[test]
    fn google_thinking_config_wins_and_extra_body_beats_top_level() {
        let top = json!({"thinking_config": {"thinking_budget": 100, "include_thoughts": false}});
        let extra = json!({"thinkingConfig": {"thinkingBudget": 2048}});
        let req = Requested {
            reasoning_effort: Some("high"),
            thinking_budget: Some(5),
            google: Some(&top),
            extra_body_google: Some(&extra),
            exclude_thoughts: false,
        };
        let c = cfg("gemini-2.5-flash", true, &req).expect("some");
        assert_eq!(
            (c.thinking_budget, c.include_thoughts),
            (Some(2048), Some(true))
        );
        let req = Requested {
            reasoning_effort: Some("high"),
            thinking_budget: Some(5),
            google: Some(&top),
            extra_body_google: None,
            exclude_thoughts: false,
        };
        let c = cfg("gemini-2.5-flash", true, &req).expect("some");
        assert_eq!(
            (c.thinking_budget, c.include_thoughts),
            (Some(100), Some(false))
        );
    }

    #[test]
    fn hajimi_thinking_budget_beats_effort_and_is_clamped() {
        let req = Requested {
            reasoning_effort: Some("low"),
            thinking_budget: Some(0),
            ..Requested::default()
        };
        assert_eq!(
            cfg("gemini-2.5-pro", true, &req).and_then(|c| c.thinking_budget),
            Some(128)
        );
        let req = Requested {
            thinking_budget: Some(-1),
            ..Requested::default()
        };
        assert_eq!(
            cfg("gemini-2.5-flash", true, &req).and_then(|c| c.thinking_budget),
            Some(-1)
        );
        let req = Requested {
            thinking_budget: Some(100),
            ..Requested::default()
        };
        assert_eq!(
            cfg("gemini-2.5-flash-lite", true, &req).and_then(|c| c.thinking_budget),
            Some(512)
        );
    }

    #[test]
    fn excluded_thoughts_keep_the_effort_and_ask_for_no_thoughts() {
        let req = Requested {
            reasoning_effort: Some("medium"),
            exclude_thoughts: true,
            ..Requested::default()
        };
        let c = cfg("gemini-2.5-flash", true, &req).expect("some");
        assert_eq!(
            (c.thinking_budget, c.include_thoughts),
            (Some(8192), Some(false))
        );
        let c = cfg("gemini-3-flash-preview", true, &req).expect("some");
        assert_eq!(
            (c.thinking_level.as_deref(), c.include_thoughts),
            (Some("MEDIUM"), Some(false))
        );
        let quiet = Requested {
            exclude_thoughts: true,
            ..Requested::default()
        };
        assert_eq!(
            cfg("gemini-2.5-flash", false, &quiet),
            None,
            "nothing asked, nothing sent"
        );
    }

    #[test]
    fn unknown_efforts_are_a_400() {
        assert!(thinking_config("gemini-2.5-flash", None, true, &effort("extreme")).is_err());
    }
}
