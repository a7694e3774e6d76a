/* flamegraph.c - see flamegraph.h. The layout is Brendan Gregg's: frames merged by name at each
 * depth, siblings in alphabetical order, widths proportional to samples. */
#include "flamegraph.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WIDTH 1200.0
#define ROW 16
#define TOP 40

struct node {
    char *name;
    uint64_t count;
    struct node **kids;
    unsigned nkids, cap;
};

static struct node *child(struct node *n, const char *name, size_t len)
{
    for (unsigned i = 0; i < n->nkids; i++)
        if (strlen(n->kids[i]->name) == len && !memcmp(n->kids[i]->name, name, len))
            return n->kids[i];
    if (n->nkids == n->cap) {
        unsigned cap = n->cap ? n->cap * 2 : 4;
        struct node **grown = realloc(n->kids, cap * sizeof(*grown));
        if (!grown)
            return NULL;
        n->kids = grown, n->cap = cap;
    }
    struct node *k = calloc(1, sizeof(*k));
    if (!k || !(k->name = strndup(name, len))) {
        free(k);
        return NULL;
    }
    return n->kids[n->nkids++] = k;
}

static void free_tree(struct node *n)
{
    for (unsigned i = 0; i < n->nkids; i++)
        free_tree(n->kids[i]);
    free(n->kids);
    free(n->name);
    free(n);
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(struct node *const *)a)->name, (*(struct node *const *)b)->name);
}

static unsigned depth_of(const struct node *n)
{
    unsigned d = 0;
    for (unsigned i = 0; i < n->nkids; i++) {
        unsigned k = depth_of(n->kids[i]);
        d = k > d ? k : d;
    }
    return d + 1;
}

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else if (*s == '&')
            fputs("&amp;", out);
        else if (*s == '"')
            fputs("&quot;", out);
        else
            fputc(*s, out);
    }
}

/* Warm colours, the same for a name every time. */
static void colour(const char *name, unsigned *r, unsigned *g, unsigned *b)
{
    uint32_t h = 2166136261u;
    for (const char *p = name; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    *r = 205 + h % 50, *g = 80 + (h >> 8) % 150, *b = (h >> 16) % 55;
}

static void draw(FILE *out, struct node *n, double x, unsigned depth, unsigned height, uint64_t total)
{
    double w = WIDTH * (double)n->count / (double)total;
    double y = TOP + (double)(height - depth - 1) * ROW;
    if (depth > 0 && w >= 0.1) {
        unsigned r, g, b;
        colour(n->name, &r, &g, &b);
        fputs("<g class=\"frame\"><title>", out);
        xml_text(out, n->name);
        fprintf(out, " (%llu samples, %.2f%%)</title>", (unsigned long long)n->count,
                100.0 * (double)n->count / (double)total);
        fprintf(out, "<rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" fill=\"rgb(%u,%u,%u)\" rx=\"2\"/>",
                x, y, w, ROW - 1, r, g, b);
        if (w > 30) {
            size_t fit = (size_t)(w / 7);
            fprintf(out, "<text x=\"%.2f\" y=\"%.1f\">", x + 3, y + ROW - 4);
            char shown[256];
            snprintf(shown, sizeof(shown), "%s", n->name);
            if (strlen(shown) > fit && fit >= 3)
                strcpy(shown + fit - 2, "..");
            xml_text(out, shown);
            fputs("</text>", out);
        }
        fputs("</g>\n", out);
    }
    if (n->nkids) /* (qsort's array may not be NULL, even for none) */
        qsort(n->kids, n->nkids, sizeof(n->kids[0]), by_name);
    for (unsigned i = 0; i < n->nkids; i++) {
        draw(out, n->kids[i], x, depth + 1, height, total);
        x += WIDTH * (double)n->kids[i]->count / (double)total;
    }
}

int flamegraph_svg(const char *folded, const char *title, FILE *out)
{
    struct node *root = calloc(1, sizeof(*root));
    if (!root || !(root->name = strdup("all"))) {
        free(root);
        return -1;
    }
    for (const char *line = folded; *line;) {
        const char *end = line + strcspn(line, "\n");
        const char *space = end;
        while (space > line && space[-1] != ' ')
            space--;
        uint64_t count = space > line ? strtoull(space, NULL, 10) : 0;
        if (count && space - 1 > line) {
            root->count += count;
            struct node *n = root;
            for (const char *f = line; n && f < space - 1;) {
                size_t len = strcspn(f, ";");
                if (f + len > space - 1)
                    len = (size_t)(space - 1 - f);
                if ((n = child(n, f, len)))
                    n->count += count;
                f += len + 1;
            }
        }
        line = *end ? end + 1 : end;
    }
    if (!root->count) {
        free_tree(root);
        return -1;
    }
    unsigned height = depth_of(root);
    fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
                 "<svg version=\"1.1\" width=\"%.0f\" height=\"%u\" xmlns=\"http://www.w3.org/2000/svg\" "
                 "font-family=\"monospace\" font-size=\"11\">\n"
                 "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f0\"/>\n<text x=\"%.0f\" y=\"24\" "
                 "text-anchor=\"middle\" font-size=\"16\">",
            WIDTH, TOP + height * ROW + 10, WIDTH / 2);
    xml_text(out, title);
    fprintf(out, " (%llu samples)</text>\n", (unsigned long long)root->count);
    draw(out, root, 0, 0, height, root->count);
    fputs("</svg>\n", out);
    free_tree(root);
    return 0;
}
