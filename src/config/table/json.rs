//! Dashboard values (JSON) read with HAJIMI's rules: integers accept numbers, numeric strings
//! and booleans (Python's `int()`), switches JSON booleans (and the environment's words),
//! lists a comma-separated string or an array. Bounds are the table's; the messages are the
//! English half of the dashboard's `参数类型错误：… / Invalid value: …`.

use std::time::Duration;

use serde_json::Value;

use crate::config::parse::{parse_bool, parse_int, split_list};

pub fn int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => parse_int(s).ok_or_else(|| format!("{s:?} is not an integer")),
        other => Err(format!("{other} is not an integer")),
    }
}

/// `n` when within `min..=max`, else the message naming the bound.
pub fn in_range(n: i64, min: i64, max: i64) -> Result<i64, String> {
    if n < min {
        Err(match min {
            0 => format!("{n} must be 0 or more"),
            1 => format!("{n} must be greater than 0"),
            _ => format!("{n} must be at least {min}"),
        })
    } else if n > max {
        Err(format!("{n} is more than {max}"))
    } else {
        Ok(n)
    }
}

fn float(v: &Value) -> Result<f64, String> {
    let f = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    f.filter(|f| f.is_finite())
        .ok_or_else(|| format!("{v} is not a number"))
}

/// Seconds (whole seconds when `whole`) within `min..=max`.
pub fn duration(v: &Value, whole: bool, min: Duration, max: Duration) -> Result<Duration, String> {
    if whole {
        let lo = i64::try_from(min.as_secs()).unwrap_or(i64::MAX);
        let hi = i64::try_from(max.as_secs()).unwrap_or(i64::MAX);
        let n = in_range(int(v)?, lo, hi)?;
        return Ok(Duration::from_secs(n.unsigned_abs()));
    }
    let f = float(v)?;
    if (min.as_secs_f64()..=max.as_secs_f64()).contains(&f) {
        Ok(Duration::from_secs_f64(f))
    } else {
        Err(format!(
            "{f} must be between {} and {} seconds",
            min.as_secs_f64(),
            max.as_secs_f64()
        ))
    }
}

pub fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(*b),
        // Saved values and environment-style words are accepted too.
        Value::String(s) => parse_bool(s)
            .ok_or_else(|| format!("{s:?} is not a boolean (true/false, 1/0, yes/no, on/off)")),
        other => Err(format!("{other} is not a boolean")),
    }
}

pub fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(format!("{other} is not a string")),
    }
}

pub fn list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(split_list(s)),
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()),
        other => Err(format!("{other} is not a list")),
    }
}
