/* libFuzzer target: any bytes given to the ONNX loader must either load (and
 * then save) or fail with a message, never crash, leak or abort. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pare/alloc.h"
#include "pare/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pare_graph *g = NULL;
    pare_error err;

    memset(&err, 0, sizeof err);
    if (pare_graph_load_buffer(data, size, "fuzz.onnx", &g, &err) == PARE_OK) {
        uint8_t *buf = NULL;
        size_t len = 0;
        if (!g)
            __builtin_trap();
        if (pare_graph_save_buffer(g, &buf, &len, &err) == PARE_OK) {
            /* What pare writes, pare must read back. */
            pare_graph *again = NULL;
            if (pare_graph_load_buffer(buf, len, "fuzz-saved.onnx", &again, &err) != PARE_OK)
                __builtin_trap();
            pare_graph_free(again);
        }
        pare_free(buf);
        pare_graph_free(g);
    } else if (g || !err.msg[0] || err.code == PARE_OK) {
        __builtin_trap(); /* failures leave no graph and say why */
    }
    return 0;
}
