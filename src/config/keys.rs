//! Every key the parser accepts, read from the raw structs themselves (so docs/config.md can
//! be checked against the code, not against a hand-kept list).

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::raw;

/// Records the field list serde's derive passes to `deserialize_struct`, then stops.
struct FieldCapture<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field capture")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for FieldCapture<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
    let mut out: &'static [&'static str] = &[];
    let _ = T::deserialize(FieldCapture(&mut out));
    out
}

/// `(section, keys)` for every table of the config file, in documentation order. Sections
/// are written as in TOML: `[listen]`, `[upstreams.NAME]`, `[[windows]]`.
#[must_use]
pub fn sections() -> Vec<(&'static str, Vec<&'static str>)> {
    let without = |keys: &'static [&'static str], skip: &str| -> Vec<&'static str> {
        keys.iter().copied().filter(|k| *k != skip).collect()
    };
    vec![
        ("[listen]", fields::<raw::RawListen>().to_vec()),
        ("[admin]", fields::<raw::RawAdmin>().to_vec()),
        ("[clock]", fields::<raw::RawClock>().to_vec()),
        (
            "[maintenance]",
            without(fields::<raw::RawMaintenance>(), "contact"),
        ),
        (
            "[maintenance.contact]",
            fields::<raw::RawContact>().to_vec(),
        ),
        ("[upstreams.NAME]", fields::<raw::RawUpstream>().to_vec()),
        ("[[windows]]", fields::<raw::RawWindow>().to_vec()),
        ("[[routes]]", fields::<raw::RawRoute>().to_vec()),
        ("[drill]", fields::<raw::RawDrill>().to_vec()),
        (
            "[settle_method_drill]",
            fields::<raw::RawSettleDrill>().to_vec(),
        ),
        ("[server]", fields::<raw::RawServer>().to_vec()),
        ("[tls]", fields::<raw::RawTls>().to_vec()),
        ("[log]", fields::<raw::RawLog>().to_vec()),
        ("[report]", fields::<raw::RawReport>().to_vec()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_struct_fields() {
        let s = sections();
        let listen = &s.iter().find(|(name, _)| *name == "[listen]").unwrap().1;
        assert_eq!(listen, &["proxy", "admin", "tls"]);
        let windows = &s.iter().find(|(name, _)| *name == "[[windows]]").unwrap().1;
        assert!(windows.contains(&"cron") && windows.contains(&"services"));
        assert!(s.iter().all(|(_, keys)| !keys.is_empty()));
    }
}
