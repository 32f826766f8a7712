//! A small XML tree for MaxCompute's REST bodies (Instance, Table, Error).
//!
//! The bodies are small and shallow, so a parsed tree is simpler than a
//! streaming walk. Both the client (reading responses) and `odps-emulator`
//! (reading requests such as the Instance XML) use it.

use quick_xml::Reader;
use quick_xml::events::Event;

/// One XML element: name, attributes, text (including CDATA) and children.
#[derive(Clone, Debug, Default, Eq, PartialEq)]
pub struct Element {
    /// Tag name.
    pub name: String,
    /// Attributes in document order, unescaped.
    pub attributes: Vec<(String, String)>,
    /// Concatenated text and CDATA directly inside this element, unescaped.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

/// An XML body that could not be parsed.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("malformed XML at byte {position}: {reason}")]
pub struct XmlError {
    /// Byte offset where parsing failed.
    pub position: u64,
    /// What went wrong.
    pub reason: String,
}

impl Element {
    /// Parses a document and returns its root element.
    ///
    /// # Errors
    ///
    /// [`XmlError`] for malformed XML or a document without a root.
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        let mut reader = Reader::from_str(xml);
        let mut stack: Vec<Self> = Vec::new();
        let err = |reader: &Reader<&[u8]>, reason: String| XmlError {
            position: reader.buffer_position(),
            reason,
        };
        loop {
            let event = reader
                .read_event()
                .map_err(|e| err(&reader, e.to_string()))?;
            let is_empty = matches!(event, Event::Empty(_));
            match event {
                Event::Start(start) | Event::Empty(start) => {
                    let mut el = Self {
                        name: start.name().as_ref().to_owned(),
                        ..Self::default()
                    };
                    for attr in start.attributes() {
                        let attr = attr.map_err(|e| err(&reader, e.to_string()))?;
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|e| err(&reader, e.to_string()))?;
                        el.attributes
                            .push((attr.key.as_ref().to_owned(), value.into_owned()));
                    }
                    if is_empty {
                        match stack.last_mut() {
                            Some(parent) => parent.children.push(el),
                            None => return Ok(el),
                        }
                    } else {
                        stack.push(el);
                    }
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| err(&reader, "unbalanced end tag".into()))?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => return Ok(el),
                    }
                }
                Event::Text(text) => {
                    if let Some(el) = stack.last_mut() {
                        el.text.push_str(&text.xml10_content());
                    }
                }
                Event::GeneralRef(r) => {
                    if let Some(el) = stack.last_mut() {
                        let name = r.xml10_content();
                        if let Some(c) = r
                            .resolve_char_ref()
                            .map_err(|e| err(&reader, e.to_string()))?
                        {
                            el.text.push(c);
                        } else if let Some(t) = quick_xml::escape::resolve_predefined_entity(&name)
                        {
                            el.text.push_str(t);
                        } else {
                            return Err(err(&reader, format!("unknown entity &{name};")));
                        }
                    }
                }
                Event::CData(data) => {
                    if let Some(el) = stack.last_mut() {
                        el.text.push_str(&data.xml10_content());
                    }
                }
                Event::Eof => return Err(err(&reader, "no complete root element".into())),
                _ => {}
            }
        }
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&Self> {
        self.children.iter().find(|c| c.name == name)
    }

    /// All children with this name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Self> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Text of the first child with this name.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// Follows a path of child names.
    pub fn path(&self, names: &[&str]) -> Option<&Self> {
        names.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The value of an attribute.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Escapes text for use inside an XML element or attribute.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// Wraps text in a CDATA section, splitting any `]]>` inside it.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_instance_like_body() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Instance><Tasks><Task Type="SQL"><Name>A</Name><Status>Failed</Status>
<Result Transform="Base64"><![CDATA[T0s=]]></Result></Task><Empty/></Tasks>
<Msg>a &amp; b &lt;c&gt;</Msg></Instance>"#;
        let root = Element::parse(xml).unwrap();
        assert_eq!(root.name, "Instance");
        let task = root.path(&["Tasks", "Task"]).unwrap();
        assert_eq!(task.attribute("Type"), Some("SQL"));
        assert_eq!(task.child_text("Status"), Some("Failed"));
        assert_eq!(task.child("Result").unwrap().text, "T0s=");
        assert_eq!(root.child_text("Msg"), Some("a & b <c>"));
        assert_eq!(root.child("Tasks").unwrap().children.len(), 2);
    }

    #[test]
    fn malformed_is_an_error() {
        assert!(Element::parse("<a><b></a>").is_err());
        assert!(Element::parse("<a>").is_err());
        assert!(Element::parse("").is_err());
    }

    #[test]
    fn cdata_survives_terminator() {
        let xml = format!("<q>{}</q>", cdata("select ']]>' from t"));
        assert_eq!(Element::parse(&xml).unwrap().text, "select ']]>' from t");
    }
}
