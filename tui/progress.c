/* Progress bar on stderr (see progress.h). */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

void progress_init(progress *p, const char *label, int64_t total)
{
    struct winsize ws;

    memset(p, 0, sizeof *p);
    p->enabled = isatty(STDERR_FILENO) == 1;
    p->label = label;
    p->total = total;
    p->t0 = cli_now();
    p->last_draw = -1.0;
    p->width = 80;
    p->rate_scale = 1.0;
    if (p->enabled && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        p->width = ws.ws_col;
}

static void fmt_eta(double s, char *buf, size_t size)
{
    if (s < 0 || s > 1e7)
        snprintf(buf, size, "?");
    else if (s < 60)
        snprintf(buf, size, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), ((int)s % 3600) / 60);
}

void progress_update(progress *p, int64_t done)
{
    double now, elapsed, rate;
    char left[192], right[64], eta[32], bar[256];
    int room, filled;

    if (!p->enabled)
        return;
    now = cli_now();
    if (p->last_draw >= 0 && now - p->last_draw < 0.1 && done < p->total)
        return;
    p->last_draw = now;
    elapsed = now - p->t0;
    rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    fmt_eta(rate > 0 ? (double)(p->total - done) / rate : -1.0, eta, sizeof eta);
    snprintf(left, sizeof left, "%s %lld/%lld %s%s", p->label, (long long)done, (long long)p->total,
             p->note, p->note[0] ? " " : "");
    snprintf(right, sizeof right, " %.0f%s ETA %s", rate * p->rate_scale,
             p->rate_unit ? p->rate_unit : "/s", eta);
    room = p->width - 1 - (int)strlen(left) - (int)strlen(right) - 2;
    if (room > (int)sizeof bar - 1)
        room = (int)sizeof bar - 1;
    if (room < 0)
        room = 0;
    filled = p->total > 0 ? (int)((double)room * (double)done / (double)p->total) : 0;
    for (int i = 0; i < room; i++)
        bar[i] = i < filled ? '=' : i == filled ? '>' : ' ';
    bar[room] = '\0';
    fprintf(stderr, "\r%s[%s]%s\033[K", left, bar, right);
    fflush(stderr);
}

void progress_finish(progress *p)
{
    if (!p->enabled)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}

void progress_note(progress *p, const char *note)
{
    snprintf(p->note, sizeof p->note, "%s", note);
}
