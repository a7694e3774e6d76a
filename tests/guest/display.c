/* The display, keyboard and pointer. Modes (the command line):
 *   graphics  320x200: red, green, blue and white quadrants
 *   text      "Hello, slate!" white on blue at the top left, the cursor at column 5, row 2
 *   modes     refused sizes set ERROR and keep the mode; a good one clears it
 * After drawing, the guest takes a screenshot (hypercall), prints "drawn", then echoes every
 * key and pointer event on the console until a 'q' is typed. */
#include "guest.h"

#define VEC_KEY 0x50
#define VEC_PTR 0x51

static const struct slate_device *display, *keyboard, *pointer;
static volatile bool key_waiting, pointer_moved;

__attribute__((interrupt)) static void on_key(struct interrupt_frame *f)
{
    (void)f;
    key_waiting = true;
    slate_outl(keyboard->port_base + SLATE_KEYBOARD_IRQ_STATUS, 1);
    lapic_eoi();
}

__attribute__((interrupt)) static void on_pointer(struct interrupt_frame *f)
{
    (void)f;
    pointer_moved = true;
    slate_outl(pointer->port_base + SLATE_POINTER_IRQ_STATUS, 1);
    lapic_eoi();
}

static uint32_t reg(uint32_t off) { return slate_inl(display->port_base + off); }
static void set(uint32_t off, uint32_t v) { slate_outl(display->port_base + off, v); }

static void draw_graphics(void)
{
    set(SLATE_DISPLAY_WIDTH, 320);
    set(SLATE_DISPLAY_HEIGHT, 200);
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == 0 && reg(SLATE_DISPLAY_PITCH) == 320 * 4);
    volatile uint32_t *fb = (volatile uint32_t *)display->window_base;
    static const uint32_t colors[4] = {0xFF0000, 0x00FF00, 0x0000FF, 0xFFFFFF};
    for (uint32_t y = 0; y < 200; y++)
        for (uint32_t x = 0; x < 320; x++)
            fb[y * 320 + x] = colors[(y >= 100) * 2 + (x >= 160)];
}

static void draw_text(void)
{
    GUEST_ASSERT(reg(SLATE_DISPLAY_MODE) == SLATE_DISPLAY_TEXT);
    GUEST_ASSERT(reg(SLATE_DISPLAY_WIDTH) == 80 && reg(SLATE_DISPLAY_HEIGHT) == 25);
    volatile uint16_t *cells = (volatile uint16_t *)display->window_base;
    static const char text[] = "Hello, slate!";
    for (unsigned i = 0; text[i]; i++)
        cells[i] = (uint16_t)(0x1F00 | (uint8_t)text[i]);
    set(SLATE_DISPLAY_CURSOR, 5 | 2 << 16);
}

static void check_modes(void)
{
    set(SLATE_DISPLAY_WIDTH, 0);
    set(SLATE_DISPLAY_HEIGHT, 200);
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == SLATE_DISPLAY_ERROR);
    GUEST_ASSERT(reg(SLATE_DISPLAY_MODE) == SLATE_DISPLAY_TEXT);
    set(SLATE_DISPLAY_WIDTH, reg(SLATE_DISPLAY_MAX_WIDTH) + 1);
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == SLATE_DISPLAY_ERROR);
    set(SLATE_DISPLAY_MODE, 7);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == SLATE_DISPLAY_ERROR);
    set(SLATE_DISPLAY_WIDTH, reg(SLATE_DISPLAY_MAX_WIDTH));
    set(SLATE_DISPLAY_HEIGHT, reg(SLATE_DISPLAY_MAX_HEIGHT));
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == 0 && reg(SLATE_DISPLAY_WIDTH) == 1920);
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_TEXT);
    GUEST_ASSERT(reg(SLATE_DISPLAY_STATUS) == 0 && reg(SLATE_DISPLAY_WIDTH) == 80);
    puts_hc("modes ok\n");
}

static void echo_events(void)
{
    for (;;) {
        WAIT_FOR(key_waiting || pointer_moved);
        if (pointer_moved) {
            pointer_moved = false;
            puts_hc("pointer x=");
            put_dec(slate_inl(pointer->port_base + SLATE_POINTER_X));
            puts_hc(" y=");
            put_dec(slate_inl(pointer->port_base + SLATE_POINTER_Y));
            puts_hc(" buttons=");
            put_dec(slate_inl(pointer->port_base + SLATE_POINTER_BUTTONS));
            puts_hc(" wheel=");
            put_dec((int32_t)slate_inl(pointer->port_base + SLATE_POINTER_WHEEL));
            puts_hc("\n");
        }
        key_waiting = false;
        uint32_t ev;
        while ((ev = slate_inl(keyboard->port_base + SLATE_KEYBOARD_EVENT)) != 0) {
            uint32_t ch = slate_inl(keyboard->port_base + SLATE_KEYBOARD_CHAR);
            if (!(ev & SLATE_KEYBOARD_PRESSED))
                continue;
            puts_hc("key usage=");
            put_hex(ev & 0xFFFF);
            puts_hc(" char=");
            put_dec(ch);
            puts_hc(" mods=");
            put_dec(ev >> 24);
            puts_hc("\n");
            if (ch == 'q')
                return;
        }
    }
}

/* For the benchmark: keep changing the whole 640x480 screen ("animate-full") or one 32x32
 * square of it ("animate-small") until the machine is stopped. */
static void animate(bool full)
{
    set(SLATE_DISPLAY_WIDTH, 640);
    set(SLATE_DISPLAY_HEIGHT, 480);
    set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    volatile uint64_t *fb = (volatile uint64_t *)display->window_base; /* two pixels at a time */
    puts_hc("drawn\n");
    for (uint32_t frame = 0;; frame++) {
        uint64_t colour = (uint64_t)(frame * 0x010203u & 0xFFFFFF) * 0x100000001ULL;
        uint32_t w = full ? 640 : 32, h = full ? 480 : 32;
        for (uint32_t y = 0; y < h; y++)
            for (uint32_t x = 0; x < w / 2; x++)
                fb[y * 320 + x] = colour;
    }
}

KMAIN kmain(const struct slate_info *info)
{
    display = slate_find_device(info, SLATE_DEV_DISPLAY, 0);
    keyboard = slate_find_device(info, SLATE_DEV_KEYBOARD, 0);
    pointer = slate_find_device(info, SLATE_DEV_POINTER, 0);
    GUEST_ASSERT(display && keyboard && pointer);
    GUEST_ASSERT(display->window_size >= 1920ULL * 1080 * 4);
    idt_set(VEC_KEY, on_key);
    idt_set(VEC_PTR, on_pointer);
    idt_load();
    lapic_enable();
    slate_outl(keyboard->port_base + keyboard->irq_reg + SLATE_IRQ_VECTOR, VEC_KEY);
    slate_outl(pointer->port_base + pointer->irq_reg + SLATE_IRQ_VECTOR, VEC_PTR);
    const char *mode = cmdline(info);
    if (str_eq(mode, "modes")) {
        check_modes();
        guest_exit(0);
    }
    if (str_eq(mode, "switches")) { /* after a key: 20 mode switches, the longest MODE write */
        set(SLATE_DISPLAY_WIDTH, 1920); /* a full screen of pixels: updates far bigger than a */
        set(SLATE_DISPLAY_HEIGHT, 1080); /* socket's buffer, so a viewer that stops reading  */
        set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS); /* blocks whoever sends to it       */
        volatile uint32_t *px = (volatile uint32_t *)display->window_base;
        for (uint32_t i = 0; i < 1920 * 1080; i++)
            px[i] = i * 2654435761u;
        puts_hc("waiting for a key\n");
        WAIT_FOR(key_waiting);
        for (uint64_t end = rdtsc() + info->tsc_khz * 1000; rdtsc() < end;) /* 1 s: it is stuck */
            __asm__ volatile("pause");
        uint64_t longest = 0;
        for (int i = 0; i < 20; i++) {
            set(SLATE_DISPLAY_WIDTH, i & 1 ? 640 : 1920);
            set(SLATE_DISPLAY_HEIGHT, i & 1 ? 480 : 1080);
            uint64_t t0 = rdtsc();
            set(SLATE_DISPLAY_MODE, i % 3 ? SLATE_DISPLAY_GRAPHICS : SLATE_DISPLAY_TEXT);
            uint64_t took = rdtsc() - t0;
            longest = took > longest ? took : longest;
            for (uint64_t end = rdtsc() + info->tsc_khz * 30; rdtsc() < end;) /* 30 ms: a refresh */
                __asm__ volatile("pause");
        }
        puts_hc("longest MODE write us: ");
        put_dec((int64_t)(longest * 1000 / info->tsc_khz));
        puts_hc("\n");
        guest_exit(0);
    }
    if (str_starts(mode, "animate"))
        animate(str_eq(mode, "animate-full"));
    if (str_eq(mode, "graphics"))
        draw_graphics();
    else
        draw_text();
    int64_t shot = hypercall(SLATE_HC_SCREENSHOT, 0, 0, 0);
    puts_hc(shot == 0 ? "drawn, screenshot taken\n" : "drawn\n");
    echo_events();
    guest_exit(0);
}
