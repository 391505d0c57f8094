//! An error and its causes as one line, for logs and plain-text answers. A
//! leaf every layer may use: the credential code that fails, and `error`,
//! which turns failures into responses.

/// Any error and its causes, outermost first, joined for humans (a cause
/// already at the end of the text is not repeated).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
