/* video_name.c: which file names are video files (video.h). Built with or without GStreamer,
 * so that a dataset can say a video cannot be read in a build without it. */
#include "video.h"

#include <string.h>
#include <strings.h>

bool media_video_is_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const known[] = {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"};
    for (size_t i = 0; dot && i < sizeof known / sizeof *known; i++)
        if (!strcasecmp(dot, known[i]))
            return true;
    return false;
}
