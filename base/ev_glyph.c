/* ev_glyph.c: the 3x5 bitmap font (ev_glyph.h). */
#include "ev_glyph.h"

unsigned ev_glyph_3x5(int ch)
{
    static const unsigned digits[10] = {075557, 026227, 071747, 071717, 055711,
                                        074717, 074757, 071111, 075757, 075717};
    static const unsigned letters[26] = {025755, 065656, 034443, 065556, 074647, 074644, 034553,
                                         055755, 072227, 011152, 055655, 044447, 057755, 065555,
                                         025552, 065644, 025563, 065655, 034216, 072222, 055557,
                                         055552, 055775, 055255, 055222, 071247};
    if (ch >= 'a' && ch <= 'z')
        ch -= 'a' - 'A';
    if (ch >= '0' && ch <= '9')
        return digits[ch - '0'];
    if (ch >= 'A' && ch <= 'Z')
        return letters[ch - 'A'];
    switch (ch) {
    case '-':
        return 000700;
    case '.':
        return 000002;
    case '/':
        return 011244;
    case '%':
        return 051245;
    case ':':
        return 002020;
    case '(':
        return 024442;
    case ')':
        return 021112;
    case '>':
        return 042124;
    case '=':
        return 007070;
    case '+':
        return 002720;
    case ',':
        return 000024;
    case '_':
        return 000007;
    default:
        return 0;
    }
}
