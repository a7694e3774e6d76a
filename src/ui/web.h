/* web.h - --display web: the port that serves noVNC's page and files to a browser, and hands the
 * page's WebSocket to libvncserver (ui_vnc.c), which speaks VNC over it. One port for both, so a
 * single SSH tunnel carries the screen. */
#ifndef SLATE_WEB_H
#define SLATE_WEB_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* Requests answered at once: a browser opens a handful of connections for noVNC's files. When
 * all are taken, a newcomer takes the place of the one that has waited longest for its request
 * (an idle connection must not lock a browser out); while every one is being answered, it is
 * refused. */
#define WEB_CLIENTS 32

/* What the page is served from and to whom. */
struct web_site {
    int dir_fd;         /* noVNC's directory (web_files_dir) */
    int port;
    bool loopback_only; /* listening on a loopback address: only a Host naming it is served */
    struct ratelimit *limit;
    pthread_mutex_t lock; /* guards clients[] */
    pthread_cond_t left;  /* a client's slot was freed */
    struct web_client {
        int fd;          /* -1: free */
        int64_t since;   /* when it connected (ms) */
        bool reading;    /* still waiting for its request: may be evicted */
        bool evicted;    /* shut to make room: leaving */
    } clients[WEB_CLIENTS];
};

/* Opens noVNC's directory for `site` (the port and address fields are the caller's). 0, or -1
 * after logging which package to install. */
int web_site_open(struct web_site *site);
void web_site_close(struct web_site *site);

/* The listener, for a new connection: a client slot for it, evicting the longest-waiting idle
 * one if need be (its read fails at once). False (logged, limited): refused, fd closed. */
bool web_admit(struct web_site *site, int fd);

/* fd's slot: its request has arrived (`free_it`: the connection is done with, or was never
 * started). */
void web_client_update(struct web_site *site, int fd, bool free_it);
/* Shutting down: every connection still reading or being answered ends at once. */
void web_drop_all(struct web_site *site);

/* A new connection on the web port (admitted), on a thread of its own: reads the browser's request (waiting
 * at most WEB_REQUEST_TIMEOUT_MS for it). A WebSocket upgrade from the page's own origin is left
 * unread and true returned: the caller gives fd to libvncserver, which answers the handshake.
 * Anything else is answered here (a file, a redirect to the page, or an error) and fd closed. */
#define WEB_REQUEST_TIMEOUT_MS 3000
bool web_take(struct web_site *site, int fd);

#endif
