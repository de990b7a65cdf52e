/* Metrics against hand-computed numbers: accuracy with ties, similarity. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pare/metrics.h"

static pare_tensor view2(float *data, int64_t rows, int64_t cols)
{
    pare_tensor t;
    int64_t dims[] = { rows, cols };
    pare_tensor_view(&t, PARE_F32, 2, dims, data);
    return t;
}

static void test_top1_topk_with_ties(void **state)
{
    float logits[] = {
        1, 3, 3, 0,   /* label 2: tie with class 1 -> rank 1: top-1 wrong, top-2 right */
        1, 3, 3, 0,   /* label 1: first max wins -> top-1 right */
        5, 4, 3, 2,   /* label 3: rank 3 -> wrong at top-2 */
        0, 0, 0, 0,   /* label 3: all tied -> rank 3 */
        0, 0, 0, 0,   /* label 0: all tied -> rank 0 */
    };
    int64_t labels[] = { 2, 1, 3, 3, 0 };
    pare_tensor t = view2(logits, 5, 4);
    pare_accuracy a;
    pare_error err = {0};
    (void)state;

    pare_accuracy_init(&a, 2);
    assert_int_equal(pare_accuracy_add(&a, &t, labels, -1, &err), PARE_OK);
    assert_int_equal(a.n, 5);
    assert_int_equal(a.top1, 2);   /* samples 1 and 4 */
    assert_int_equal(a.topk, 3);   /* + sample 0 */
    assert_float_equal(pare_accuracy_top1(&a), 0.4, 1e-12);
    assert_float_equal(pare_accuracy_topk(&a), 0.6, 1e-12);

    /* row by row: which samples count, not just how many */
    {
        static const int want_top1[] = { 0, 1, 0, 0, 1 }, want_top2[] = { 1, 1, 0, 0, 1 };
        for (int r = 0; r < 5; r++) {
            pare_tensor row = view2(logits + 4 * r, 1, 4);
            pare_accuracy_init(&a, 2);
            assert_int_equal(pare_accuracy_add(&a, &row, labels + r, 1, &err), PARE_OK);
            assert_int_equal(a.top1, want_top1[r]);
            assert_int_equal(a.topk, want_top2[r]);
        }
    }
}

static void test_top5_default_and_partial_batch(void **state)
{
    float logits[2 * 10];
    int64_t labels[] = { 5, 4, 7 }; /* third row is padding: never read */
    pare_tensor t = view2(logits, 2, 10);
    pare_accuracy a;
    pare_error err = {0};
    (void)state;

    for (int i = 0; i < 10; i++) {
        logits[i] = (float)i;        /* ranks: 9 8 7 6 5 | 4 ... */
        logits[10 + i] = (float)-i;  /* ranks: 0 1 2 3 4 | 5 ... */
    }
    pare_accuracy_init(&a, 0);
    assert_int_equal(a.k, 5);
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 1, &err), PARE_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.topk, 1);      /* label 5 is the 5th largest */
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 2, &err), PARE_OK);
    assert_int_equal(a.n, 3);
    assert_int_equal(a.top1, 0);
    assert_int_equal(a.topk, 3);      /* row 1, label 4: rank 4 */
    labels[1] = 5;
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 2, &err), PARE_OK);
    assert_int_equal(a.topk, 4);      /* row 1, label 5: rank 5 -> out */
    assert_int_equal(a.n, 5);
}

static void test_nan_and_bad_labels(void **state)
{
    float logits[] = { NAN, 1, 2, 0 };
    int64_t labels[] = { 0, 9 };
    pare_tensor t = view2(logits, 2, 2);
    pare_accuracy a;
    pare_error err = {0};
    (void)state;

    pare_accuracy_init(&a, 1);
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 1, &err), PARE_OK);
    assert_int_equal(a.top1, 0); /* a NaN label logit is wrong */
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 2, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "label 9 of sample 1 is out of range for 2 classes");
    assert_int_equal(a.n, 1); /* nothing counted from the failed batch */
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 3, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "3 samples requested but the logits hold 2");
    t.dtype = PARE_I32;
    assert_int_equal(pare_accuracy_add(&a, &t, labels, 1, &err), PARE_EINPUT);
}

static void test_merge_equals_single_stream(void **state)
{
    float logits[] = { 0, 1, 1, 0, 2, 0, 0, 2 };
    int64_t labels[] = { 1, 1, 0, 0 };
    pare_tensor all = view2(logits, 4, 2), lo = view2(logits, 2, 2), hi = view2(logits + 4, 2, 2);
    pare_accuracy a, b, c;
    (void)state;

    pare_accuracy_init(&a, 1);
    pare_accuracy_init(&b, 1);
    pare_accuracy_init(&c, 1);
    assert_int_equal(pare_accuracy_add(&a, &all, labels, -1, NULL), PARE_OK);
    assert_int_equal(pare_accuracy_add(&b, &lo, labels, -1, NULL), PARE_OK);
    assert_int_equal(pare_accuracy_add(&c, &hi, labels + 2, -1, NULL), PARE_OK);
    pare_accuracy_merge(&b, &c);
    assert_int_equal(b.n, a.n);
    assert_int_equal(b.top1, a.top1);
    assert_int_equal(a.top1, 2);
}

static void test_cosine_and_snr_known_values(void **state)
{
    float out[] = { 1, 0, 0, 2 };
    float ref[] = { 1, 0, 2, 0 };
    pare_tensor o = view2(out, 2, 2), r = view2(ref, 2, 2);
    pare_similarity s;
    pare_similarity_result res;
    pare_error err = {0};
    char buf[32];
    (void)state;

    pare_similarity_init(&s);
    assert_int_equal(pare_similarity_add(&s, &o, &r, -1, &err), PARE_OK);
    pare_similarity_get(&s, &res);
    assert_int_equal(res.n_samples, 2);
    assert_float_equal(res.cosine_mean, 0.5, 1e-12);   /* (1 + 0) / 2 */
    assert_float_equal(res.cosine_global, 0.2, 1e-12); /* 1 / (sqrt5 * sqrt5) */
    /* sum ref^2 = 5, sum err^2 = 4 + 4 = 8 */
    assert_float_equal(res.snr_db, 10.0 * log10(5.0 / 8.0), 1e-12);
    assert_float_equal(res.max_abs_err, 2.0, 0);
    assert_float_equal(res.mean_abs_err, 1.0, 1e-12);  /* (0+0+2+2)/4 */
    assert_float_equal(res.argmax_agree, 0.5, 0);

    /* ref [3, 4], out [3, 4.5]: 25 / 0.25 = 100 -> 20 dB; cos = 27/(5*sqrt(29.25)) */
    {
        float o2[] = { 3, 4.5f }, r2[] = { 3, 4 };
        pare_tensor a = view2(o2, 1, 2), b = view2(r2, 1, 2);
        pare_similarity_init(&s);
        assert_int_equal(pare_similarity_add(&s, &a, &b, -1, &err), PARE_OK);
        pare_similarity_get(&s, &res);
        assert_float_equal(res.snr_db, 20.0, 1e-9);
        assert_float_equal(res.cosine_mean, 27.0 / (5.0 * sqrt(29.25)), 1e-12);
        assert_float_equal(res.max_abs_err, 0.5, 0);
        assert_float_equal(res.mean_abs_err, 0.25, 0);
        assert_string_equal(pare_snr_format(res.snr_db, buf, sizeof buf), "20.00 dB");
    }
}

static void test_identical_and_zero_outputs(void **state)
{
    float out[] = { 0, 0, 1, -2 };
    float same[] = { 0, 0, 1, -2 };
    float zero[] = { 0, 0, 0, 0 };
    pare_tensor o = view2(out, 2, 2), r = view2(same, 2, 2), z = view2(zero, 2, 2);
    pare_similarity s;
    pare_similarity_result res;
    char buf[32];
    (void)state;

    pare_similarity_init(&s);
    assert_int_equal(pare_similarity_add(&s, &o, &r, -1, NULL), PARE_OK);
    pare_similarity_get(&s, &res);
    assert_true(isinf(res.snr_db) && res.snr_db > 0);
    assert_string_equal(pare_snr_format(res.snr_db, buf, sizeof buf), "+inf dB");
    assert_float_equal(res.cosine_mean, 1.0, 1e-12); /* a zero row equal to a zero row counts 1 */
    assert_float_equal(res.max_abs_err, 0.0, 0);
    assert_float_equal(res.argmax_agree, 1.0, 0);

    pare_similarity_init(&s);
    assert_int_equal(pare_similarity_add(&s, &z, &r, -1, NULL), PARE_OK);
    pare_similarity_get(&s, &res);
    assert_float_equal(res.cosine_mean, 0.5, 1e-12);  /* row 0: both zero = 1; row 1: one zero = 0 */
    assert_float_equal(res.snr_db, 0.0, 1e-12);       /* err = ref */
    assert_string_equal(pare_snr_format(-INFINITY, buf, sizeof buf), "-inf dB");
    assert_string_equal(pare_snr_format(NAN, buf, sizeof buf), "nan dB");
}

static void test_similarity_streams_and_errors(void **state)
{
    float out[] = { 1, 2, 3, 4, 5, 6 }, ref[] = { 1, 2.5f, 3, 4, 5, 7 };
    pare_tensor o = view2(out, 3, 2), r = view2(ref, 3, 2), r2 = view2(ref, 2, 3);
    pare_tensor o1 = view2(out, 1, 2), r1 = view2(ref, 1, 2), o2 = view2(out + 2, 2, 2),
                rr2 = view2(ref + 2, 2, 2);
    pare_similarity whole, part, other;
    pare_similarity_result a, b;
    pare_error err = {0};
    (void)state;

    pare_similarity_init(&whole);
    pare_similarity_init(&part);
    pare_similarity_init(&other);
    assert_int_equal(pare_similarity_add(&whole, &o, &r, -1, &err), PARE_OK);
    assert_int_equal(pare_similarity_add(&part, &o1, &r1, -1, &err), PARE_OK);
    assert_int_equal(pare_similarity_add(&other, &o2, &rr2, -1, &err), PARE_OK);
    pare_similarity_merge(&part, &other);
    pare_similarity_get(&whole, &a);
    pare_similarity_get(&part, &b);
    assert_int_equal(b.n_samples, 3);
    assert_float_equal(a.cosine_mean, b.cosine_mean, 1e-12);
    assert_float_equal(a.snr_db, b.snr_db, 1e-12);
    assert_float_equal(a.max_abs_err, 1.0, 0);
    assert_float_equal(b.max_abs_err, 1.0, 0);
    assert_float_equal(a.mean_abs_err, 1.5 / 6.0, 1e-12);
    assert_float_equal(a.argmax_agree, 1.0, 0);

    assert_int_equal(pare_similarity_add(&whole, &o, &r2, -1, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "output shape [3, 2] differs from reference shape [2, 3]");
    assert_int_equal(whole.n_samples, 3);
}

static void test_nan_outputs_poison_errors(void **state)
{
    float out[] = { 1, NAN }, ref[] = { 1, 2 };
    pare_tensor o = view2(out, 1, 2), r = view2(ref, 1, 2);
    pare_similarity s;
    pare_similarity_result res;
    (void)state;

    pare_similarity_init(&s);
    assert_int_equal(pare_similarity_add(&s, &o, &r, -1, NULL), PARE_OK);
    pare_similarity_get(&s, &res);
    assert_int_equal(s.n_nonfinite, 1);
    assert_true(isnan(res.max_abs_err));
    assert_true(isnan(res.snr_db));
    assert_true(isnan(res.mean_abs_err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_top1_topk_with_ties),
        cmocka_unit_test(test_top5_default_and_partial_batch),
        cmocka_unit_test(test_nan_and_bad_labels),
        cmocka_unit_test(test_merge_equals_single_stream),
        cmocka_unit_test(test_cosine_and_snr_known_values),
        cmocka_unit_test(test_identical_and_zero_outputs),
        cmocka_unit_test(test_similarity_streams_and_errors),
        cmocka_unit_test(test_nan_outputs_poison_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
