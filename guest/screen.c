/* screen.c - the display: a text console, and a graphics demo you can draw on with the pointer.
 *
 * In text mode the display's window holds 80x25 cells of (character, colour) and slate draws
 * the glyphs: a kernel gets a screen console without a font. Graphics mode turns the same window
 * into a linear framebuffer of 0x00RRGGBB pixels. The console keeps its own copy of the cells,
 * so it can come back after the graphics demo has painted over them.
 */
#include "kernel.h"

#define COLUMNS SLATE_DISPLAY_TEXT_COLUMNS
#define ROWS SLATE_DISPLAY_TEXT_ROWS
#define ATTR_CONSOLE 0x07 /* light grey on black */
#define ATTR_STATUS 0x1F  /* white on blue: the status line at the top */
#define FIRST_ROW 1       /* row 0 is the status line */

#define DEMO_WIDTH 640
#define DEMO_HEIGHT 480
#define DEMO_BARS_HEIGHT 360
#define BRUSH_COLOUR 0xFF8000

static const struct slate_device *display;
static uint16_t cells[ROWS][COLUMNS];
static unsigned row = FIRST_ROW, column;
static bool in_graphics;

static uint32_t display_reg(unsigned reg) { return slate_inl(display->port_base + reg); }
static void display_set(unsigned reg, uint32_t v) { slate_outl(display->port_base + reg, v); }
static volatile uint16_t *window_cell(unsigned r, unsigned c)
{
    return (volatile uint16_t *)(display->window_base + r * display_reg(SLATE_DISPLAY_PITCH)) + c;
}

static void put_cell(unsigned r, unsigned c, uint16_t cell)
{
    cells[r][c] = cell;
    if (!in_graphics)
        *window_cell(r, c) = cell;
}

static void show_all_cells(void)
{
    uint32_t pitch = display_reg(SLATE_DISPLAY_PITCH);
    for (unsigned r = 0; r < ROWS; r++)
        memcpy((void *)(display->window_base + r * pitch), cells[r], sizeof(cells[r]));
}

static void scroll_up(void)
{
    memmove(cells[FIRST_ROW], cells[FIRST_ROW + 1], sizeof(cells[0]) * (ROWS - FIRST_ROW - 1));
    for (unsigned c = 0; c < COLUMNS; c++)
        cells[ROWS - 1][c] = ATTR_CONSOLE << 8 | ' ';
    if (!in_graphics)
        show_all_cells();
    row = ROWS - 1;
}

static void new_line(void)
{
    column = 0;
    if (++row == ROWS)
        scroll_up();
}

static void put_char(char ch)
{
    switch (ch) {
    case '\n': new_line(); return;
    case '\r': column = 0; return;
    case '\b':
        if (column)
            put_cell(row, --column, ATTR_CONSOLE << 8 | ' ');
        return;
    case '\t':
        do
            put_char(' ');
        while (column % 8);
        return;
    }
    put_cell(row, column, (uint16_t)(ATTR_CONSOLE << 8 | (uint8_t)ch));
    if (++column == COLUMNS)
        new_line();
}

void screen_write(const char *s, size_t len)
{
    if (!display)
        return;
    while (len--)
        put_char(*s++);
    if (!in_graphics)
        display_set(SLATE_DISPLAY_CURSOR, column | row << 16);
}

/* The top line: white on blue, padded to the full width. */
void screen_status(const char *text)
{
    if (!display)
        return;
    for (unsigned c = 0; c < COLUMNS; c++)
        put_cell(0, c, (uint16_t)(ATTR_STATUS << 8 | (uint8_t)(*text ? *text++ : ' ')));
}

bool screen_init(void)
{
    display = device_find(SLATE_DEV_DISPLAY);
    if (!display)
        return false;
    display_set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_TEXT);
    for (unsigned r = 0; r < ROWS; r++)
        for (unsigned c = 0; c < COLUMNS; c++)
            cells[r][c] = ATTR_CONSOLE << 8 | ' ';
    show_all_cells();
    return true;
}

/* ---- the graphics demo ---- */

static volatile uint32_t *pixel(unsigned x, unsigned y)
{
    return (volatile uint32_t *)(display->window_base + y * display_reg(SLATE_DISPLAY_PITCH)) + x;
}

/* Eight colour bars over a grey ramp: every pixel follows from its coordinates, so a test can
 * check a screenshot against the formula. */
static uint32_t demo_colour(unsigned x, unsigned y)
{
    static const uint32_t bars[8] = {0xFFFFFF, 0xFFFF00, 0x00FFFF, 0x00FF00,
                                     0xFF00FF, 0xFF0000, 0x0000FF, 0x000000};
    if (y < DEMO_BARS_HEIGHT)
        return bars[x * 8 / DEMO_WIDTH];
    return 0x010101u * (x * 255 / (DEMO_WIDTH - 1));
}

static void draw_pattern(void)
{
    uint32_t pitch = display_reg(SLATE_DISPLAY_PITCH);
    for (unsigned y = 0; y < DEMO_HEIGHT; y++) {
        volatile uint32_t *line = (volatile uint32_t *)(display->window_base + y * pitch);
        for (unsigned x = 0; x < DEMO_WIDTH; x++)
            line[x] = demo_colour(x, y);
    }
}

static void brush(int x, int y)
{
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++)
            if (x + dx >= 0 && x + dx < DEMO_WIDTH && y + dy >= 0 && y + dy < DEMO_HEIGHT)
                *pixel((unsigned)(x + dx), (unsigned)(y + dy)) = BRUSH_COLOUR;
}

/* A line of brush dots from (x0, y0) to (x1, y1): Bresenham's algorithm. */
static void stroke(int x0, int y0, int x1, int y1)
{
    int dx = x1 > x0 ? x1 - x0 : x0 - x1, sx = x0 < x1 ? 1 : -1;
    int dy = y1 > y0 ? y0 - y1 : y1 - y0, sy = y0 < y1 ? 1 : -1;
    for (int err = dx + dy;;) {
        brush(x0, y0);
        if (x0 == x1 && y0 == y1)
            return;
        int e2 = 2 * err;
        if (e2 >= dy)
            err += dy, x0 += sx;
        if (e2 <= dx)
            err += dx, y0 += sy;
    }
}

static bool set_graphics(void)
{
    display_set(SLATE_DISPLAY_WIDTH, DEMO_WIDTH);
    display_set(SLATE_DISPLAY_HEIGHT, DEMO_HEIGHT);
    display_set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_GRAPHICS);
    return !(display_reg(SLATE_DISPLAY_STATUS) & SLATE_DISPLAY_ERROR);
}

static void set_text(void)
{
    display_set(SLATE_DISPLAY_MODE, SLATE_DISPLAY_TEXT);
    in_graphics = false;
    show_all_cells();
    display_set(SLATE_DISPLAY_CURSOR, column | row << 16);
}

/* `draw`: the pattern, a screenshot if slate was given --screenshot, then painting with the left
 * button (the right button wipes the canvas) until q or Escape. */
void screen_draw_demo(void)
{
    if (!display) {
        kprintf("draw: there is no display (start slate with --display vnc)\n");
        return;
    }
    if (!set_graphics()) {
        kprintf("draw: the display refused %ux%u\n", DEMO_WIDTH, DEMO_HEIGHT);
        return;
    }
    in_graphics = true;
    draw_pattern();
    bool shot = slate_hypercall(SLATE_HC_SCREENSHOT, 0, 0, 0, 0) == 0;
    kprintf("draw: %ux%u, %s; left button paints, right button wipes, q or Escape ends\n", DEMO_WIDTH,
            DEMO_HEIGHT, shot ? "screenshot taken" : "no screenshot (slate has no --screenshot)");
    struct pointer_state p;
    int last_x = -1, last_y = -1;
    for (;;) {
        int c = console_get_input();
        if (c == 'q' || c == 27)
            break;
        while (pointer_take(&p)) {
            int x = (int)p.x, y = (int)p.y;
            if (p.buttons & 4)
                draw_pattern();
            if (p.buttons & 1)
                last_x >= 0 ? stroke(last_x, last_y, x, y) : brush(x, y);
            last_x = p.buttons & 1 ? x : -1;
            last_y = y;
        }
        if (c < 0) {
            kernel_poll();
            __asm__ volatile("sti; hlt"); /* a tick wakes us at the latest */
        }
    }
    set_text();
    kprintf("draw: back to text\n");
}
