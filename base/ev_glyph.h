/* ev_glyph.h: a tiny bitmap font, 3x5 pixel glyphs for digits, letters (drawn as capitals) and a
 * little punctuation, for text drawn into pixels without a font library: search/'s report images
 * and the echoviewoverlay element. (phantom/ keeps the glyphs of its synthetic screens' text:
 * eight of them differ, and the phantom's frames must stay byte-identical.) */
#ifndef EV_GLYPH_H
#define EV_GLYPH_H

#ifdef __cplusplus
extern "C" {
#endif

#define EV_GLYPH_WIDTH 3
#define EV_GLYPH_HEIGHT 5
#define EV_GLYPH_ADVANCE 4 /* columns from one character to the next (one blank column) */

/* The glyph of ch: 15 bits, rows top to bottom, 3 bits each, the most significant bit of a row
 * its left column; 0 (blank) for a space and for characters the font lacks. Lower-case
 * letters get the capital's glyph. */
unsigned ev_glyph_3x5(int ch);

/* Whether the pixel at column col (0-2), row row (0-4) of glyph is set. */
static inline int ev_glyph_pixel(unsigned glyph, int col, int row)
{
    return (int)(glyph >> ((4 - row) * 3 + (2 - col))) & 1;
}

#ifdef __cplusplus
}
#endif

#endif
