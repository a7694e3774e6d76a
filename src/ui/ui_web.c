/* ui_web.c - see web.h. A small static file server for noVNC's files, deliberately strict: GET
 * and HEAD only, one request per connection, plain file names inside the directory, a request
 * that must arrive whole within WEB_REQUEST_TIMEOUT_MS, and a reader that stops reading dropped
 * after LISTEN_SEND_TIMEOUT_MS (listen_send_all). Two checks keep other web sites out: a page
 * served on loopback answers only to a Host naming loopback (a DNS-rebinding page names its own
 * host), and a WebSocket is accepted only from the page's own origin (any site may open a
 * WebSocket to 127.0.0.1; the browser says which site asked, in Origin). */
#include "web.h"

#include "display.h"
#include "listen.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_MAX 8192
#define PATH_MAX_LEN 200
#define FILE_MAX (16 << 20)
/* What "/" sends the browser to: noVNC's page, connected at once, scaled to the window. */
#define LANDING "/vnc.html?autoconnect=true&resize=scale&reconnect=true&path=websockify"

int web_site_open(struct web_site *site)
{
    pthread_mutex_init(&site->lock, NULL);
    pthread_condattr_t monotonic;
    pthread_condattr_init(&monotonic);
    pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
    pthread_cond_init(&site->left, &monotonic);
    pthread_condattr_destroy(&monotonic);
    for (unsigned i = 0; i < WEB_CLIENTS; i++)
        site->clients[i].fd = -1;
    char dir[256];
    if (web_files_dir(dir, sizeof(dir)) < 0)
        return -1;
    site->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (site->dir_fd < 0) {
        log_error("--display web: %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

void web_site_close(struct web_site *site)
{
    if (site->dir_fd >= 0) {
        close(site->dir_fd);
        pthread_mutex_destroy(&site->lock);
        pthread_cond_destroy(&site->left);
    }
    site->dir_fd = -1;
}

void web_drop_all(struct web_site *site)
{
    if (site->dir_fd < 0)
        return;
    pthread_mutex_lock(&site->lock);
    for (unsigned i = 0; i < WEB_CLIENTS; i++)
        if (site->clients[i].fd >= 0)
            shutdown(site->clients[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&site->lock);
}

bool web_admit(struct web_site *site, int fd)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += 200 * 1000000L; /* an evicted client leaves at once: wait that long at most */
    until.tv_sec += until.tv_nsec / 1000000000L, until.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&site->lock);
    struct web_client *slot = NULL;
    for (;;) {
        struct web_client *oldest = NULL;
        bool leaving = false;
        for (unsigned i = 0; i < WEB_CLIENTS && !slot; i++) {
            struct web_client *c = &site->clients[i];
            if (c->fd < 0)
                slot = c;
            else if (c->reading && (!oldest || c->since < oldest->since))
                oldest = c;
            leaving |= c->evicted;
        }
        if (slot)
            break;
        if (oldest) {
            shutdown(oldest->fd, SHUT_RDWR); /* its poll wakes, its read ends: it closes and leaves */
            oldest->reading = false, oldest->evicted = true;
        } else if (!leaving) {
            break; /* every one is being answered */
        }
        if (pthread_cond_timedwait(&site->left, &site->lock, &until) == ETIMEDOUT)
            break;
    }
    if (slot)
        *slot = (struct web_client){.fd = fd, .since = clock_now_ns() / 1000000, .reading = true};
    pthread_mutex_unlock(&site->lock);
    if (!slot) {
        log_warn_limited(site->limit, "--display web: %u requests under way (the most slate answers at "
                         "once); refused another", WEB_CLIENTS);
        close(fd);
    }
    return slot != NULL;
}

/* fd's slot: no longer waiting for its request (`free_it`: gone altogether). */
void web_client_update(struct web_site *site, int fd, bool free_it)
{
    pthread_mutex_lock(&site->lock);
    for (unsigned i = 0; i < WEB_CLIENTS; i++)
        if (site->clients[i].fd == fd) {
            site->clients[i].reading = false;
            if (free_it) {
                site->clients[i] = (struct web_client){.fd = -1};
                pthread_cond_broadcast(&site->left);
            }
            break;
        }
    pthread_mutex_unlock(&site->lock);
}

/* The request's head (up to its blank line), peeked: left in the socket for libvncserver if it
 * is a WebSocket handshake. Its length, or -1 (timed out, closed, too long). */
static int peek_request(int fd, char *buf, size_t size)
{
    int64_t deadline = clock_now_ns() / 1000000 + WEB_REQUEST_TIMEOUT_MS;
    ssize_t seen = 0;
    for (;;) {
        int64_t left = deadline - clock_now_ns() / 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            return -1;
        ssize_t n = recv(fd, buf, size - 1, MSG_PEEK);
        if (n <= 0)
            return -1;
        buf[n] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end)
            return (int)(end + 4 - buf);
        if ((size_t)n == size - 1)
            return -1;
        if (n == seen) /* nothing new: poll says readable until it is read, so wait a little */
            nanosleep(&(struct timespec){0, 10000000}, NULL);
        seen = n;
    }
}

/* The value of header `name` in the request head, copied to out ("" when absent). */
static void header(const char *head, const char *name, char *out, size_t outlen)
{
    out[0] = 0;
    size_t len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, len) || l[len] != ':')
            continue;
        l += len + 1;
        while (*l == ' ' || *l == '\t')
            l++;
        size_t n = strcspn(l, "\r\n");
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t'))
            n--;
        snprintf(out, outlen, "%.*s", (int)(n < outlen ? n : outlen - 1), l);
        return;
    }
}

static bool has_token(const char *value, const char *token)
{
    size_t len = strlen(token);
    for (const char *p = value; *p; p++)
        if (!strncasecmp(p, token, len) && (p == value || p[-1] == ' ' || p[-1] == ',') &&
            (!p[len] || p[len] == ',' || p[len] == ' '))
            return true;
    return false;
}

/* Served on loopback, only a Host that names loopback at this port: a page from elsewhere that
 * rebinds its own name to 127.0.0.1 still says its own name here. */
static bool host_allowed(const struct web_site *site, const char *host)
{
    if (!site->loopback_only)
        return true;
    const char *names[] = {"127.0.0.1", "localhost", "[::1]"};
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(host, names[i], len))
            continue;
        if (!host[len] && site->port == 80)
            return true;
        char *end;
        if (host[len] == ':' && strtol(host + len + 1, &end, 10) == site->port && !*end)
            return true;
    }
    return false;
}

/* A WebSocket from the page's own origin: http://HOST or https://HOST, HOST as in the Host
 * header. (libvncserver refuses a handshake without an Origin too.) */
static bool origin_allowed(const char *origin, const char *host)
{
    const char *rest = !strncasecmp(origin, "http://", 7) ? origin + 7 : !strncasecmp(origin, "https://", 8) ? origin + 8 : NULL;
    return rest && !strcasecmp(rest, host);
}

static void respond(int fd, const char *status, const char *extra, const char *body)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %zu\r\n"
                     "%sConnection: close\r\n\r\n%s",
                     status, strlen(body), extra, body);
    if (n > 0 && (size_t)n < sizeof(head))
        listen_send_all(fd, head, (size_t)n, NULL);
}

static const char *content_type(const char *path)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css"}, {".svg", "image/svg+xml"}, {".png", "image/png"}, {".json", "application/json"},
        {".ico", "image/x-icon"}, {".woff", "font/woff"}, {".ttf", "font/ttf"}, {".mp3", "audio/mpeg"},
        {".oga", "audio/ogg"},
    };
    const char *dot = strrchr(path, '.');
    for (unsigned i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* A plain relative name inside the directory: letters, digits, '-', '_', '.', '/' between
 * parts, no part that starts with a dot (so no "..", no hidden files). */
static bool plain_path(const char *path)
{
    size_t len = strlen(path);
    if (!len || len > PATH_MAX_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = path[i];
        bool part_start = i == 0 || path[i - 1] == '/';
        if ((part_start && (c == '.' || c == '/')) ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.' || c == '/'))
            return false;
    }
    return path[len - 1] != '/';
}

static void send_file(const struct web_site *site, int fd, const char *path, bool head_only)
{
    int file = plain_path(path) ? openat(site->dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK) : -1;
    struct stat st;
    if (file < 0 || fstat(file, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
        respond(fd, "404 Not Found", "", "not found\n");
        if (file >= 0)
            close(file);
        return;
    }
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %" PRId64 "\r\n"
                     "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                     content_type(path), (int64_t)st.st_size);
    bool ok = listen_send_all(fd, head, (size_t)n, NULL);
    char buf[65536];
    for (ssize_t got; ok && !head_only && (got = read(file, buf, sizeof(buf))) > 0;)
        ok = listen_send_all(fd, buf, (size_t)got, NULL); /* false: the browser stopped reading */
    close(file);
}

bool web_take(struct web_site *site, int fd)
{
    char *req = malloc(REQUEST_MAX + 1);
    int len = req ? peek_request(fd, req, REQUEST_MAX + 1) : -1;
    web_client_update(site, fd, false);
    bool websocket = false;
    char method[8], target[PATH_MAX_LEN + 64], version[16], host[128], origin[160], upgrade[64], connection[128];
    if (len < 0 || sscanf(req, "%7s %263s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7)) {
        if (len >= 0)
            respond(fd, "400 Bad Request", "", "bad request\n");
        goto done;
    }
    req[len] = 0;
    header(req, "Host", host, sizeof(host));
    header(req, "Origin", origin, sizeof(origin));
    header(req, "Upgrade", upgrade, sizeof(upgrade));
    header(req, "Connection", connection, sizeof(connection));
    if (!host_allowed(site, host)) {
        log_warn_limited(site->limit, "--display web: refused a request for host \"%s\" (served to "
                         "127.0.0.1 or localhost only)", host);
        respond(fd, "403 Forbidden", "", "this page is served to 127.0.0.1 or localhost only\n");
        goto done;
    }
    if (!strcasecmp(upgrade, "websocket") && has_token(connection, "upgrade")) {
        if (strcmp(method, "GET") || !origin_allowed(origin, host)) {
            log_warn_limited(site->limit, "--display web: refused a WebSocket from %s (not this page's origin)",
                             origin[0] ? origin : "no origin");
            respond(fd, "403 Forbidden", "", "a WebSocket from another site\n");
            goto done;
        }
        websocket = true; /* left unread: libvncserver answers the handshake */
        goto done;
    }
    if (recv(fd, req, (size_t)len, 0) != len) /* the head, consumed: nothing else is read */
        goto done;
    bool head_only = !strcmp(method, "HEAD");
    if (!head_only && strcmp(method, "GET")) {
        respond(fd, "405 Method Not Allowed", "Allow: GET, HEAD\r\n", "GET or HEAD only\n");
        goto done;
    }
    target[strcspn(target, "?#")] = 0;
    if (!strcmp(target, "/"))
        respond(fd, "302 Found", "Location: " LANDING "\r\n", "the screen is at " LANDING "\n");
    else if (target[0] != '/')
        respond(fd, "400 Bad Request", "", "bad request\n");
    else
        send_file(site, fd, target + 1, head_only);
done:
    free(req);
    if (!websocket)
        shutdown(fd, SHUT_WR);
    web_client_update(site, fd, true); /* (before the close: the number may be reused at once) */
    if (!websocket)
        close(fd);
    return websocket;
}
