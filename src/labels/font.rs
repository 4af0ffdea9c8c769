//! The Unicode face labels fall back to for text the PDF base fonts cannot show.

use super::LabelError;
use printpdf::ParsedFont;

/// The WenQuanYi Micro Hei face shipped in `label_templates/fonts/` (Latin and CJK).
const UNICODE_FONT: &[u8] = include_bytes!("../../label_templates/fonts/wqy-microhei.ttf");

/// The shipped Unicode face, prepared once at start. A label embeds only the glyphs it shows.
pub struct UnicodeFont {
    /// The face without its 28,000 glyph names (`post` version 3: a PDF never uses them), which
    /// otherwise dominate the cost of cutting a subset: the bytes subsets are cut from, read in
    /// place for character look-ups (a parsed copy of every glyph would hold tens of megabytes
    /// for the life of the process).
    lean: Vec<u8>,
}

impl UnicodeFont {
    pub fn load() -> Result<Self, LabelError> {
        use write_fonts::read::{FontRef, TableProvider};
        let unreadable = |e: &dyn std::fmt::Display| {
            LabelError::Render(format!(
                "label_templates/fonts/wqy-microhei.ttf is not a readable font: {e}"
            ))
        };
        let source = FontRef::new(UNICODE_FONT).map_err(|e| unreadable(&e))?;
        let old = source.post().map_err(|e| unreadable(&e))?;
        let mut post = write_fonts::tables::post::Post::new(
            old.italic_angle(),
            old.underline_position(),
            old.underline_thickness(),
            old.is_fixed_pitch(),
            0,
            0,
            0,
            0,
        );
        post.version = write_fonts::types::Version16Dot16::VERSION_3_0;
        let mut builder = write_fonts::FontBuilder::new();
        builder.add_table(&post).map_err(|e| unreadable(&e))?;
        builder.copy_missing_tables(source);
        let lean = builder.build();
        FontRef::new(&lean)
            .and_then(|f| f.cmap().map(|_| ()))
            .map_err(|e| unreadable(&e))?;
        Ok(Self { lean })
    }

    /// A font of just the glyphs of `chars` (and `.notdef`): cut out of the face by `subsetter`
    /// (which keeps what a PDF needs), with a `cmap` for those characters added back by
    /// `write-fonts`, so the PDF writer can map text to the subset's glyphs. Embedded as it is.
    pub(super) fn subset(
        &self,
        chars: impl Iterator<Item = char>,
    ) -> Result<ParsedFont, LabelError> {
        let bytes = self.subset_bytes(chars)?;
        ParsedFont::from_bytes(&bytes, 0, &mut Vec::new())
            .ok_or_else(|| LabelError::Render("the label font subset is not readable".into()))
    }

    pub(super) fn subset_bytes(
        &self,
        chars: impl Iterator<Item = char>,
    ) -> Result<Vec<u8>, LabelError> {
        use write_fonts::read::{FontRef, TableProvider};
        use write_fonts::types::GlyphId;
        let unreadable = |e: write_fonts::read::ReadError| {
            LabelError::Render(format!("reading the label font: {e}"))
        };
        let cmap = FontRef::new(&self.lean)
            .and_then(|f| f.cmap())
            .map_err(unreadable)?;
        let mut remapper = subsetter::GlyphRemapper::new();
        let mut mappings = std::collections::BTreeMap::new();
        for c in chars {
            if mappings.contains_key(&c) {
                continue;
            }
            let found = cmap
                .map_codepoint(c)
                .and_then(|g| u16::try_from(g.to_u32()).ok())
                .filter(|g| *g != 0);
            if let Some(gid) = found {
                mappings.insert(c, GlyphId::new(u32::from(remapper.remap(gid))));
            }
        }
        let glyphs = subsetter::subset(&self.lean, 0, &remapper)
            .map_err(|e| LabelError::Render(format!("subsetting the label font: {e}")))?;
        let cmap = write_fonts::tables::cmap::Cmap::from_mappings(mappings)
            .map_err(|e| LabelError::Render(format!("label font cmap: {e}")))?;
        let subset = write_fonts::read::FontRef::new(&glyphs)
            .map_err(|e| LabelError::Render(format!("reading the label font subset: {e}")))?;
        let mut builder = write_fonts::FontBuilder::new();
        builder
            .add_table(&cmap)
            .map_err(|e| LabelError::Render(format!("label font cmap: {e}")))?;
        builder.copy_missing_tables(subset);
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use write_fonts::read::{FontRef, TableProvider};

    /// Outline facts of `c`'s glyph: contours, bounding box, advance.
    fn glyph(font: &FontRef<'_>, c: char) -> (i16, [i16; 4], u16) {
        let gid = font.cmap().unwrap().map_codepoint(c).expect("mapped");
        assert_ne!(gid.to_u32(), 0, "{c} maps to .notdef");
        let g = font
            .loca(None)
            .unwrap()
            .get_glyf(gid, &font.glyf().unwrap())
            .unwrap()
            .expect("has an outline");
        let advance = font.hmtx().unwrap().advance(gid).unwrap();
        (
            g.number_of_contours(),
            [g.x_min(), g.y_min(), g.x_max(), g.y_max()],
            advance,
        )
    }

    #[test]
    fn a_subset_keeps_the_outlines_and_advances_of_its_characters_only() {
        let font = UnicodeFont::load().unwrap();
        let text = "张伟 深圳市福田区 Müller 26楼";
        let bytes = font.subset_bytes(text.chars()).unwrap();
        assert!(bytes.len() < 20_000, "{} bytes", bytes.len());
        let (small, big) = (
            FontRef::new(&bytes).unwrap(),
            FontRef::new(UNICODE_FONT).unwrap(),
        );
        for c in text.chars().filter(|c| !c.is_whitespace()) {
            assert_eq!(glyph(&small, c), glyph(&big, c), "{c}");
        }
        // Nothing else came along; glyph names stayed behind.
        assert_eq!(small.post().unwrap().num_names(), 0);
        assert_eq!(small.cmap().unwrap().map_codepoint('上'), None);
        let glyphs = small.maxp().unwrap().num_glyphs();
        // (CJK glyphs of this face are often composites: their parts come along.)
        assert!(glyphs < 64, "{glyphs} glyphs");
        // The PDF writer reads it.
        assert!(ParsedFont::from_bytes(&bytes, 0, &mut Vec::new()).is_some());
    }
}
