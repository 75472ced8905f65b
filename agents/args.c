/* args.c -- see args.h. */
#include "agents/args.h"

#include <errno.h>
#include <stdlib.h>

bool args_parse_long(const char *s, long min, long max, long *ret)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *ret = v;
    return true;
}
