/* The runner's comparison rule: ONNX's default tolerance, NaN/Inf, exact
 * integers and booleans, dtype and shape checks, and the mismatch message. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/tensor.h"

#include "compare.h"

static void test_float_tolerance_is_atol_plus_rtol(void **state)
{
    (void)state;
    assert_true(conf_float_close(1.0, 1.0));
    assert_true(conf_float_close(1000.9, 1000.0));     /* 0.9 <= 1e-7 + 1.0 */
    assert_false(conf_float_close(1001.1, 1000.0));
    assert_true(conf_float_close(-1000.9, -1000.0));   /* rtol uses |expected| */
    assert_true(conf_float_close(5e-8, 0.0));          /* atol alone near zero */
    assert_false(conf_float_close(1e-6, 0.0));
    assert_false(conf_float_close(0.0, 1e-3));         /* 1e-3 > 1e-7 + 1e-6 */
}

static void test_nan_and_inf(void **state)
{
    (void)state;
    assert_true(conf_float_close(NAN, NAN));
    assert_false(conf_float_close(NAN, 1.0));
    assert_false(conf_float_close(1.0, NAN));
    assert_true(conf_float_close(INFINITY, INFINITY));
    assert_true(conf_float_close(-INFINITY, -INFINITY));
    assert_false(conf_float_close(-INFINITY, INFINITY));
    assert_false(conf_float_close(1e30, INFINITY));
    assert_false(conf_float_close(INFINITY, 1e30));
    assert_false(conf_float_close(NAN, INFINITY));
}

static void test_float_tensors_report_first_mismatch(void **state)
{
    int64_t dims[2] = {2, 3};
    float want_d[6] = {0, 1, 2, 3, 4, 5};
    float got_d[6] = {0, 1, 2, 3.5f, 4, 9};
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_F32, 2, dims, want_d);
    pare_tensor_view(&got, PARE_F32, 2, dims, want_d);
    assert_null(conf_compare(&got, &want, "y"));
    pare_tensor_view(&got, PARE_F32, 2, dims, got_d);
    msg = conf_compare(&got, &want, "y");
    assert_non_null(msg);
    assert_string_equal(msg, "output 'y' [1, 0]: got 3.5, expected 3 "
                             "(2 of 6 elements differ, max abs error 4)");
    pare_free(msg);
}

static void test_nan_in_output_is_a_mismatch(void **state)
{
    int64_t dims[1] = {3};
    float want_d[3] = {1, NAN, 3};
    float got_d[3] = {1, NAN, NAN};
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_F32, 1, dims, want_d);
    pare_tensor_view(&got, PARE_F32, 1, dims, got_d);
    msg = conf_compare(&got, &want, "y");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "[2]: got nan, expected 3 (1 of 3 elements differ"));
    pare_free(msg);
}

static void test_integers_are_exact(void **state)
{
    int64_t dims[1] = {2};
    int64_t want_d[2] = {INT64_MAX, -7};
    int64_t got_d[2] = {INT64_MAX - 1, -7};
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_I64, 1, dims, want_d);
    pare_tensor_view(&got, PARE_I64, 1, dims, got_d);
    msg = conf_compare(&got, &want, "idx");
    assert_non_null(msg);
    assert_string_equal(msg, "output 'idx' [0]: got 9223372036854775806, expected "
                             "9223372036854775807 (1 of 2 elements differ)");
    pare_free(msg);
}

static void test_uint64_and_bool_are_exact(void **state)
{
    int64_t dims[1] = {2};
    uint64_t want_u[2] = {UINT64_MAX, 1};
    uint64_t got_u[2] = {UINT64_MAX - 1, 1};
    uint8_t want_b[2] = {1, 0};
    uint8_t got_b[2] = {1, 1};
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_U64, 1, dims, want_u);
    pare_tensor_view(&got, PARE_U64, 1, dims, got_u);
    msg = conf_compare(&got, &want, "u");
    assert_non_null(msg);
    assert_non_null(strstr(msg, "got 18446744073709551614, expected 18446744073709551615"));
    pare_free(msg);
    pare_tensor_view(&want, PARE_BOOL, 1, dims, want_b);
    pare_tensor_view(&got, PARE_BOOL, 1, dims, want_b);
    assert_null(conf_compare(&got, &want, "b"));
    pare_tensor_view(&got, PARE_BOOL, 1, dims, got_b);
    msg = conf_compare(&got, &want, "b");
    assert_non_null(msg);
    assert_string_equal(msg, "output 'b' [1]: got 1, expected 0 (1 of 2 elements differ)");
    pare_free(msg);
}

static void test_dtype_and_shape_must_match(void **state)
{
    int64_t d23[2] = {2, 3}, d32[2] = {3, 2}, d6[1] = {6};
    float f[6] = {0};
    int32_t i[6] = {0};
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_F32, 2, d23, f);
    pare_tensor_view(&got, PARE_I32, 2, d23, i);
    msg = conf_compare(&got, &want, "y");
    assert_string_equal(msg, "output 'y': dtype int32, expected float32");
    pare_free(msg);
    pare_tensor_view(&got, PARE_F32, 2, d32, f);
    msg = conf_compare(&got, &want, "y");
    assert_string_equal(msg, "output 'y': shape [3, 2], expected [2, 3]");
    pare_free(msg);
    pare_tensor_view(&got, PARE_F32, 1, d6, f);
    msg = conf_compare(&got, &want, "y");
    assert_string_equal(msg, "output 'y': shape [6], expected [2, 3]");
    pare_free(msg);
}

static void test_empty_and_scalar(void **state)
{
    int64_t d0[2] = {0, 3};
    float a = 2.0f, b = 2.5f;
    pare_tensor got, want;
    char *msg;

    (void)state;
    pare_tensor_view(&want, PARE_F32, 2, d0, NULL);
    pare_tensor_view(&got, PARE_F32, 2, d0, NULL);
    assert_null(conf_compare(&got, &want, "e"));
    pare_tensor_view(&want, PARE_F32, 0, NULL, &a);
    pare_tensor_view(&got, PARE_F32, 0, NULL, &b);
    msg = conf_compare(&got, &want, "s");
    assert_string_equal(msg, "output 's' []: got 2.5, expected 2 "
                             "(1 of 1 elements differ, max abs error 0.5)");
    pare_free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_float_tolerance_is_atol_plus_rtol),
        cmocka_unit_test(test_nan_and_inf),
        cmocka_unit_test(test_float_tensors_report_first_mismatch),
        cmocka_unit_test(test_nan_in_output_is_a_mismatch),
        cmocka_unit_test(test_integers_are_exact),
        cmocka_unit_test(test_uint64_and_bool_are_exact),
        cmocka_unit_test(test_dtype_and_shape_must_match),
        cmocka_unit_test(test_empty_and_scalar),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
