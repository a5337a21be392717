//! Readable names for Rust functions in a guest's name section: rustc's legacy
//! mangling (`_ZN4core9panicking5panic17h0123456789abcdefE`) shown as a path
//! (`core::panicking::panic`), without the hash. Other names pass unchanged.

use core::fmt;

/// Displays a name-section function name, demangled when it is a legacy Rust
/// symbol.
#[derive(Debug, Clone, Copy)]
pub struct Demangled<'a>(pub &'a str);

/// The path segments of a legacy Rust symbol, or `None` if `name` is not one.
fn segments(name: &str) -> Option<impl Iterator<Item = &str> + '_> {
    // LLVM's suffix on a local copy (`….llvm.123456`) is not part of the symbol.
    let name = name.split_once(".llvm.").map_or(name, |(symbol, _)| symbol);
    let mut rest = name.strip_prefix("_ZN")?.strip_suffix('E')?;
    let mut parts = [""; 32];
    let mut n = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let len: usize = rest.get(..digits)?.parse().ok()?;
        let part = rest.get(digits..digits + len)?;
        *parts.get_mut(n)? = part;
        n += 1;
        rest = &rest[digits + len..];
    }
    // The last segment is the hash: `h` and 16 hex digits.
    let hashed = n > 1 && {
        let last = parts[n - 1];
        last.len() == 17 && last.starts_with('h') && last[1..].bytes().all(|b| b.is_ascii_hexdigit())
    };
    let keep = if hashed { n - 1 } else { n };
    Some(parts.into_iter().take(keep))
}

/// Writes one segment with rustc's `$…$` escapes and `..` (for `::`) decoded.
fn segment(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    // A segment that starts with an escape gets a `_` in front of it.
    let s = if s.starts_with("_$") { &s[1..] } else { s };
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("..") {
            f.write_str("::")?;
            rest = r;
        } else if let Some(r) = rest.strip_prefix('$') {
            let Some(end) = r.find('$') else {
                return f.write_str(rest);
            };
            let text = match &r[..end] {
                "SP" => "@",
                "BP" => "*",
                "RF" => "&",
                "LT" => "<",
                "GT" => ">",
                "LP" => "(",
                "RP" => ")",
                "C" => ",",
                "u20" => " ",
                "u27" => "'",
                "u5b" => "[",
                "u5d" => "]",
                "u7b" => "{",
                "u7d" => "}",
                "u7e" => "~",
                other => {
                    write!(f, "${other}$")?;
                    ""
                }
            };
            f.write_str(text)?;
            rest = &r[end + 1..];
        } else {
            let end = rest.find(['$', '.']).unwrap_or(rest.len()).max(1);
            f.write_str(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    Ok(())
}

impl fmt::Display for Demangled<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(parts) = segments(self.0) else {
            return f.write_str(self.0);
        };
        for (i, p) in parts.enumerate() {
            if i > 0 {
                f.write_str("::")?;
            }
            segment(f, p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> String {
        Demangled(s).to_string()
    }

    #[test]
    fn legacy_rust_symbols_become_paths() {
        assert_eq!(
            d("_ZN4core9panicking5panic17h0123456789abcdefE"),
            "core::panicking::panic"
        );
        assert_eq!(d("_ZN10rust_sieve4main17h00112233aabbccddE"), "rust_sieve::main");
        assert_eq!(
            d("_ZN60_$LT$alloc..string..String$u20$as$u20$core..fmt..Display$GT$3fmt17h0123456789abcdefE"),
            "<alloc::string::String as core::fmt::Display>::fmt"
        );
        assert_eq!(d("_ZN3foo3barE"), "foo::bar", "no hash");
        assert_eq!(
            d("_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17hd0eaa556fc0d8365E.llvm.701051708434371182"),
            "std::rt::lang_start::{{closure}}"
        );
    }

    #[test]
    fn other_names_pass_unchanged() {
        for s in [
            "deep_crash",
            "main",
            "_ZN",
            "_ZN3fooE_",
            "_ZN9tooshortE",
            "_ZN99xE",
            "__original_main",
        ] {
            assert_eq!(d(s), s);
        }
    }
}
