/* vnctool - a small real VNC client (libvncclient) for the display tests, and a PNG reader.
 *   vnctool vnc HOST:PORT [pixel X Y]... [key KEYSYM]... [pointer X Y MASK]... [wait MS]...
 *       connects, takes one full framebuffer update, prints "pixel X Y RRGGBB" for each pixel
 *       asked for, then sends the key presses (down and up) and pointer events in order.
 *   vnctool vnc HOST:PORT quick
 *       connects, takes the first update and leaves (for connect/disconnect churn).
 *   vnctool vnc HOST:PORT stall MS
 *       connects, presses 'a', asks for 1000 updates and reads none of them for MS milliseconds
 *       (a client whose connection is stuck), then leaves.
 *   vnctool png FILE X Y...   prints "pixel X Y RRGGBB" from a PNG file (libpng).
 * A server that asks for a password gets $VNC_PASSWORD. */
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void quiet(const char *format, ...) { (void)format; }

/* The password for VNC authentication, from $VNC_PASSWORD. */
static char *password_from_env(rfbClient *client)
{
    (void)client;
    const char *p = getenv("VNC_PASSWORD");
    return strdup(p ? p : "");
}

static volatile int updates;
static uint64_t area;
static void update_done(rfbClient *client) { (void)client; updates++; }
static void got_rect(rfbClient *client, int x, int y, int w, int h)
{
    (void)client, (void)x, (void)y;
    area += (uint64_t)w * (uint64_t)h;
}

static int png_pixels(int argc, char **argv)
{
    FILE *f = fopen(argv[2], "rb");
    png_image image = {.version = PNG_IMAGE_VERSION};
    if (!f || !png_image_begin_read_from_stdio(&image, f)) {
        fprintf(stderr, "vnctool: %s: not a readable PNG\n", argv[2]);
        return 1;
    }
    image.format = PNG_FORMAT_RGB;
    unsigned char *buf = malloc(PNG_IMAGE_SIZE(image));
    if (!buf || !png_image_finish_read(&image, NULL, buf, 0, NULL))
        return 1;
    printf("size %u %u\n", image.width, image.height);
    for (int i = 3; i + 1 < argc; i += 2) {
        unsigned x = (unsigned)atoi(argv[i]), y = (unsigned)atoi(argv[i + 1]);
        unsigned char *p = buf + (y * image.width + x) * 3;
        printf("pixel %u %u %02x%02x%02x\n", x, y, p[0], p[1], p[2]);
    }
    free(buf);
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "png"))
        return png_pixels(argc, argv);
    if (argc < 3 || strcmp(argv[1], "vnc")) {
        fprintf(stderr, "usage: vnctool vnc HOST:PORT [pixel X Y|key KEYSYM|pointer X Y MASK|wait MS]...\n"
                        "       vnctool png FILE X Y...\n");
        return 2;
    }
    rfbClientLog = quiet;
    rfbClientErr = quiet;
    rfbClient *client = rfbGetClient(8, 3, 4);
    client->FinishedFrameBufferUpdate = update_done;
    client->GotFrameBufferUpdate = got_rect;
    client->appData.useRemoteCursor = FALSE; /* the pixels as the guest drew them, no cursor */
    client->GetPassword = password_from_env;
    char host[256];
    snprintf(host, sizeof(host), "%s", argv[2]);
    char *colon = strrchr(host, ':');
    if (!colon)
        return 2;
    *colon = 0;
    free(client->serverHost);
    client->serverHost = strdup(host);
    client->serverPort = atoi(colon + 1);
    int fake_argc = 0;
    if (!rfbInitClient(client, &fake_argc, NULL)) {
        fprintf(stderr, "vnctool: cannot connect to %s\n", argv[2]);
        return 1;
    }
    if (argc == 5 && !strcmp(argv[3], "stall")) {
        SendKeyEvent(client, 'a', TRUE);
        SendKeyEvent(client, 'a', FALSE);
        for (int i = 0; i < 1000; i++)
            SendFramebufferUpdateRequest(client, 0, 0, client->width, client->height, i > 0);
        struct timespec stuck = {atol(argv[4]) / 1000, atol(argv[4]) % 1000 * 1000000};
        nanosleep(&stuck, NULL);
        printf("stalled\n");
        return 0;
    }
    /* One full update: wait (up to 5 s) until the whole framebuffer has arrived. */
    SendFramebufferUpdateRequest(client, 0, 0, client->width, client->height, FALSE);
    for (int i = 0; i < 50 && !updates; i++) {
        int n = WaitForMessage(client, 100000);
        if (n < 0 || (n > 0 && !HandleRFBServerMessage(client)))
            break;
    }
    /* Then until the server has nothing more to say for 300 ms: the rest of the screen.
     * "quick" as the only operation: connect, take the first update, leave. */
    bool quick = argc == 4 && !strcmp(argv[3], "quick");
    for (int i = 0; i < 100 && !quick; i++) {
        SendFramebufferUpdateRequest(client, 0, 0, client->width, client->height, TRUE);
        int n = WaitForMessage(client, 300000);
        if (n <= 0 || !HandleRFBServerMessage(client))
            break;
    }
    printf("size %d %d\n", client->width, client->height);
    const rfbPixelFormat *fmt = &client->format;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "pixel") && i + 2 < argc) {
            int x = atoi(argv[i + 1]), y = atoi(argv[i + 2]);
            uint32_t px;
            memcpy(&px, client->frameBuffer + ((size_t)y * client->width + x) * 4, 4);
            printf("pixel %d %d %02x%02x%02x\n", x, y, (px >> fmt->redShift) & 0xFF,
                   (px >> fmt->greenShift) & 0xFF, (px >> fmt->blueShift) & 0xFF);
            i += 2;
        } else if (!strcmp(argv[i], "key") && i + 1 < argc) {
            uint32_t keysym = (uint32_t)strtoul(argv[i + 1], NULL, 0);
            SendKeyEvent(client, keysym, TRUE);
            SendKeyEvent(client, keysym, FALSE);
            i += 1;
        } else if (!strcmp(argv[i], "pointer") && i + 3 < argc) {
            SendPointerEvent(client, atoi(argv[i + 1]), atoi(argv[i + 2]), atoi(argv[i + 3]));
            i += 3;
        } else if (!strcmp(argv[i], "watch") && i + 1 < argc) {
            /* Incremental updates for MS milliseconds: how many, and how many pixels they held. */
            struct timespec t0, t;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int start_updates = updates;
            uint64_t start_area = area;
            long ms = atol(argv[i + 1]);
            for (;;) {
                clock_gettime(CLOCK_MONOTONIC, &t);
                if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms)
                    break;
                SendFramebufferUpdateRequest(client, 0, 0, client->width, client->height, TRUE);
                int n = WaitForMessage(client, 100000);
                if (n < 0 || (n > 0 && !HandleRFBServerMessage(client)))
                    break;
            }
            int got = updates - start_updates;
            printf("updates %d per_second %.1f pixels_per_update %.0f\n", got, got * 1000.0 / ms,
                   got ? (double)(area - start_area) / got : 0.0);
            i += 1;
        } else if (!strcmp(argv[i], "wait") && i + 1 < argc) {
            usleep((useconds_t)atoi(argv[i + 1]) * 1000);
            i += 1;
        }
    }
    fflush(stdout);
    usleep(100000); /* let the last events leave before the socket closes */
    free(client->frameBuffer);
    rfbClientCleanup(client);
    return 0;
}
