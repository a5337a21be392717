#![doc = include_str!("../README.md")]
use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

#[proc_macro_attribute]
pub fn ktest(attr: TokenStream, item: TokenStream) -> TokenStream {
    let name = match fn_name(item.clone()) {
        Some(n) => n,
        None => return compile_error("#[ktest] applies to a `fn`"),
    };
    let expect = match should_fault(attr) {
        Ok(e) => e,
        Err(msg) => return compile_error(msg),
    };
    let static_name = Ident::new(
        &format!("__KTEST_{}", name.to_string().to_uppercase()),
        Span::call_site(),
    );
    let code = format!(
        "#[used] #[unsafe(link_section = \".ktests\")] \
         static {static_name}: crate::ktest::KTest = crate::ktest::KTest {{ \
             name: concat!(module_path!(), \"::\", \"{name}\"), \
             func: {name}, \
             should_fault: {expect}, \
         }};"
    );
    let mut out = item;
    out.extend(code.parse::<TokenStream>().expect("generated code parses"));
    out
}

/// The identifier after the `fn` keyword.
fn fn_name(item: TokenStream) -> Option<Ident> {
    let mut tokens = item.into_iter();
    while let Some(t) = tokens.next() {
        if let TokenTree::Ident(i) = &t
            && i.to_string() == "fn"
        {
            if let Some(TokenTree::Ident(name)) = tokens.next() {
                return Some(name);
            }
            return None;
        }
    }
    None
}

/// `should_fault = <expr>` → `Some(<expr>)`, nothing → `None`.
fn should_fault(attr: TokenStream) -> Result<String, &'static str> {
    let tokens: Vec<TokenTree> = attr.into_iter().collect();
    if tokens.is_empty() {
        return Ok("None".into());
    }
    match tokens.as_slice() {
        [TokenTree::Ident(key), TokenTree::Punct(eq), rest @ ..]
            if key.to_string() == "should_fault" && eq.as_char() == '=' && !rest.is_empty() =>
        {
            let expr: TokenStream = rest.iter().cloned().collect();
            Ok(format!("Some(crate::ktest::{expr})"))
        }
        _ => Err("expected `#[ktest]` or `#[ktest(should_fault = Fault::Kind)]`"),
    }
}

fn compile_error(msg: &str) -> TokenStream {
    let mut args = TokenStream::new();
    args.extend([TokenTree::Literal(Literal::string(msg))]);
    [
        TokenTree::Ident(Ident::new("compile_error", Span::call_site())),
        TokenTree::Punct(Punct::new('!', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, args)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}
