/* Job files: ACT spellings and aliases, FleetX's Compress form, defaults and
 * inheritance, every error kind with its exact location and hint, the
 * multi-error report, the writers' round trip, pare_job_set, and
 * docs/config.md against the schema it is generated from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pare/alloc.h"
#include "pare/job.h"
#include "pare/quant.h"

#define CONFIG_MD PARE_TEST_DATA "/../../docs/config.md"

/* An ACT-style job using the alias spellings ACT configs use. */
static const char *const full_job =
    "Global:\n"
    "  model_filename: tests/data/lenet5.onnx\n"
    "  data: fashion-mnist\n"
    "  save_dir: out/lenet5\n"
    "  batch_size: 32\n"
    "  metric: top1\n"
    "Distillation:\n"
    "  alpha: 1.0\n"
    "  loss: l2\n"
    "  node: [logits]\n"
    "Quantization:\n"
    "  weight_bits: 8\n"
    "  activation_quantize_type: moving_average_abs_max\n"
    "  quantize_op_types: [Conv, Gemm]\n"
    "  skip_tensor_list: conv1.weight\n"
    "TrainConfig:\n"
    "  iterations: 500\n"
    "  eval_iter: 100\n"
    "  learning_rate:\n"
    "    type: CosineAnnealingDecay\n"
    "    learning_rate: 0.00005\n"
    "    T_max: 500\n"
    "  optimizer:\n"
    "    type: Momentum\n"
    "    momentum: 0.9\n"
    "    weight_decay: 0.00004\n"
    "  origin_metric: 0.91\n"
    "QuantPost:\n"
    "  algo: KL\n"
    "  bias_correction: true\n"
    "  batch_num: 5\n"
    "  epochs: 20\n"
    "  lr: 0.01\n"
    "  recon_level: region-wise\n"
    "  regions: [[[conv1_out, relu1_out], [fc1_out]], [x, [y]]]\n"
    "HyperParameterOptimization:\n"
    "  ptq_algo: [KL, hist]\n"
    "  bias_correct: [true]\n"
    "  hist_percent: [0.98, 0.999]\n"
    "  batch_num: [10, 30]\n"
    "  max_quant_count: 20\n"
    "ChannelPrune:\n"
    "  pruned_ratio: 0.3\n"
    "  prune_params_name: [conv1.weight, conv2.weight]\n"
    "  criterion: geometry_median\n"
    "UnstructurePrune:\n"
    "  prune_strategy: gmp\n"
    "  prune_params_type: None\n"
    "  gmp_config:\n"
    "    stable_iterations: 0\n"
    "    pruning_iterations: 4500\n"
    "    tunning_iterations: 4500\n"
    "    initial_ratio: 0.15\n"
    "ASPPrune:\n"
    "  prunable_layers: [fc1.weight]\n"
    "TransformerPrune:\n"
    "  pruned_ratio: 0.2\n"
    "  heads_ratio: 0.25\n"
    "Layers:\n"
    "  conv1.weight: 0.2\n"
    "  \"conv2.weight\": 0.4\n"
    "Sensitivity:\n"
    "  ratios: [0.1, 0.3, 0.5]\n"
    "  cache_dir: out/sens\n";

static char tmpdir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pare-job-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char p[256];
    (void)state;
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/job%d.yaml", tmpdir, i);
        unlink(p);
    }
    return rmdir(tmpdir);
}

static const char *tmp(int i)
{
    static char buf[4][128];
    snprintf(buf[i], sizeof buf[i], "%s/job%d.yaml", tmpdir, i);
    return buf[i];
}

static pare_job *load_ok(const char *text)
{
    pare_job *job = NULL;
    pare_error err = {0};
    pare_status rc = pare_job_load_string(text, "job.yaml", &job, NULL, &err);
    if (rc != PARE_OK)
        fail_msg("unexpected error: %s: %s (%s)", err.where, err.msg, err.hint);
    assert_non_null(job);
    return job;
}

/* Loads text expecting exactly one problem; checks where, message, hint. */
static void expect_error(const char *text, const char *where, const char *msg, const char *hint)
{
    pare_job *job = (pare_job *)1;
    pare_error err = {0};
    pare_job_diags diags = {0};

    assert_int_equal(pare_job_load_string(text, "job.yaml", &job, &diags, &err), PARE_EINPUT);
    assert_null(job);
    assert_int_equal(err.code, PARE_EINPUT);
    assert_string_equal(err.where, where);
    assert_string_equal(err.msg, msg);
    assert_string_equal(err.hint, hint);
    assert_int_equal(diags.n, 1);
    assert_string_equal(diags.v[0].msg, msg);
    pare_job_diags_fini(&diags);
}

/* ---- defaults and spellings ---- */

static void test_new_has_defaults_and_no_sections(void **state)
{
    pare_job *job = pare_job_new();
    (void)state;

    assert_non_null(job);
    assert_false(job->global.meta.present);
    assert_false(job->quant_post.meta.present);
    assert_int_equal(job->global.batch_size, 64);
    assert_int_equal(job->global.seed, 1);
    assert_int_equal(job->quant_post.weight_bits, 8);
    assert_int_equal(job->quant_post.algo, PARE_JOB_ALGO_HIST);
    assert_true(job->quant_post.hist_percent == 0.9999);
    {
        /* pare quant and job files share ACT's documented default */
        pare_quant_opts qo;
        pare_quant_opts_init(&qo);
        assert_true(job->quant_post.hist_percent == qo.hist_percent);
    }
    assert_int_equal(job->quant_post.batch_nums, 10);
    assert_int_equal(job->quant_post.batch_size, 64);
    assert_true(job->quant_post.onnx_format);
    assert_int_equal(job->quant_post.quantize_op_types.n, 3);
    assert_string_equal(job->quant_post.quantize_op_types.v[2], "MatMul");
    assert_int_equal(job->quant_post.weight_quantize_type, PARE_JOB_WQ_CHANNEL_WISE_ABS_MAX);
    assert_int_equal(job->train.optimizer.type, PARE_JOB_OPT_ADAMW);
    assert_true(job->train.learning_rate.learning_rate == 1e-4);
    assert_int_equal(job->train.logging_iter, 50);
    assert_int_equal(job->hpo.ptq_algo.n, 4);
    assert_int_equal(job->hpo.ptq_algo.v[0], PARE_JOB_ALGO_KL);
    assert_int_equal(job->hpo.bias_correct.n, 2);
    assert_true(job->hpo.bias_correct.v[0] && !job->hpo.bias_correct.v[1]);
    assert_int_equal(job->hpo.batch_num.v[1], 30);
    assert_int_equal(job->sensitivity.ratios.n, 9);
    assert_true(job->sensitivity.ratios.v[8] == 0.9);
    assert_true(job->unstructure_prune.global);
    assert_int_equal(job->unstructure_prune.gmp_config.resume_iteration, -1);
    assert_int_equal(job->asp_prune.n, 2);
    assert_int_equal(job->asp_prune.m, 4);
    assert_int_equal(job->distill.loss.n, 1);
    assert_true(job->distill.temperature == 1.0);
    assert_null(job->global.model);
    pare_job_free(job);
    pare_job_free(NULL);
}

static void test_act_aliases_are_normalised(void **state)
{
    pare_job *job = load_ok(full_job);
    (void)state;

    assert_string_equal(job->global.model, "tests/data/lenet5.onnx");
    assert_true(pare_job_is_set(job, "Global", "model"));
    assert_true(pare_job_is_set(job, "Global", "model_filename"));
    assert_false(pare_job_is_set(job, "Global", "seed"));
    /* Quantization is FleetX's name for QuantAware. */
    assert_true(job->quant_aware.meta.present);
    assert_true(pare_job_is_set(job, "QuantAware", "skip_tensor_list"));
    assert_int_equal(job->quant_aware.skip_tensor_list.n, 1);
    assert_string_equal(job->quant_aware.skip_tensor_list.v[0], "conv1.weight");
    assert_int_equal(job->quant_aware.quantize_op_types.n, 2);
    assert_int_equal(job->train.train_iter, 500);
    assert_int_equal(job->train.learning_rate.type, PARE_JOB_LR_COSINE);
    assert_true(job->train.learning_rate.learning_rate == 0.00005);
    assert_int_equal(job->train.learning_rate.T_max, 500);
    assert_int_equal(job->train.optimizer.type, PARE_JOB_OPT_MOMENTUM);
    /* optimizer.weight_decay and TrainConfig.weight_decay are one setting */
    assert_true(job->train.weight_decay == 0.00004);
    assert_true(job->train.optimizer.weight_decay == 0.00004);
    assert_true(job->train.origin_metric == 0.91);
    /* batch sizes inherit Global's */
    assert_int_equal(job->train.batch_size, 32);
    assert_int_equal(job->quant_post.batch_size, 32);
    assert_false(pare_job_is_set(job, "QuantPost", "batch_size"));
    assert_int_equal(job->quant_post.algo, PARE_JOB_ALGO_KL);
    assert_true(job->quant_post.bias_correct);
    assert_true(pare_job_is_set(job, "QuantPost", "bias_correct"));
    assert_int_equal(job->quant_post.batch_nums, 5);
    assert_int_equal(job->quant_post.recon_epochs, 20);
    assert_true(job->quant_post.recon_lr == 0.01);
    assert_int_equal(job->quant_post.recon_level, PARE_JOB_RECON_REGION);
    assert_int_equal(job->quant_post.regions.n, 2);
    assert_int_equal(job->quant_post.regions.v[0].inputs.n, 2);
    assert_string_equal(job->quant_post.regions.v[0].inputs.v[1], "relu1_out");
    assert_int_equal(job->quant_post.regions.v[0].outputs.n, 1);
    assert_string_equal(job->quant_post.regions.v[0].outputs.v[0], "fc1_out");
    assert_string_equal(job->quant_post.regions.v[1].inputs.v[0], "x");
    assert_string_equal(job->quant_post.regions.v[1].outputs.v[0], "y");
    assert_int_equal(job->hpo.ptq_algo.n, 2);
    assert_int_equal(job->hpo.ptq_algo.v[1], PARE_JOB_ALGO_HIST);
    assert_int_equal(job->hpo.bias_correct.n, 1);
    assert_true(job->channel_prune.pruned_ratio == 0.3);
    assert_int_equal(job->channel_prune.criterion, PARE_JOB_CRIT_GEOMETRY_MEDIAN);
    assert_int_equal(job->channel_prune.prune_params_name.n, 2);
    assert_int_equal(job->unstructure_prune.prune_strategy, PARE_JOB_STRATEGY_GMP);
    assert_int_equal(job->unstructure_prune.prune_params_type, PARE_JOB_PARAMS_ALL);
    assert_int_equal(job->unstructure_prune.gmp_config.tunning_iterations, 4500);
    assert_int_equal(job->unstructure_prune.gmp_config.pruning_steps, 1);
    assert_int_equal(job->asp_prune.prune_params_name.n, 1);
    assert_true(job->transformer_prune.heads_ratio == 0.25);
    assert_false(pare_job_is_set(job, "TransformerPrune", "ffn_ratio"));
    assert_int_equal(job->layers.n, 2);
    assert_string_equal(job->layers.names[1], "conv2.weight");
    assert_true(job->layers.ratios[1] == 0.4);
    assert_true(pare_job_is_set(job, "Layers", "conv1.weight"));
    assert_int_equal(job->distill.alpha.n, 1);
    assert_int_equal(job->distill.loss.v[0], PARE_JOB_LOSS_L2);
    assert_int_equal(job->distill.node.n, 1);
    assert_int_equal(job->sensitivity.ratios.n, 3);
    assert_string_equal(job->sensitivity.cache_dir, "out/sens");
    assert_false(job->transformer_prune.meta.present == false);
    assert_string_equal(job->source, "job.yaml");
    pare_job_free(job);
}

static void test_scalar_forms_and_act_spellings(void **state)
{
    pare_job *job = load_ok("TrainConfig:\n"
                            "  learning_rate: 0.001\n"
                            "  optimizer: SGD\n"
                            "  weight_decay: 0.0005\n"
                            "UnstructurePrune:\n"
                            "  prune_params_type: conv1x1_only\n"
                            "  gmp_config: {tuning_iterations: 7}\n"
                            "Distillation:\n"
                            "  teacher_model_dir: teacher.onnx\n"
                            "  node: [t1, s1, t2, s2]\n"
                            "  alpha: [1.0, 0.5]\n"
                            "QuantPost:\n"
                            "  bias_correct: yes\n");
    (void)state;

    assert_int_equal(job->train.learning_rate.type, PARE_JOB_LR_CONSTANT);
    assert_true(job->train.learning_rate.learning_rate == 0.001);
    assert_int_equal(job->train.optimizer.type, PARE_JOB_OPT_SGD);
    assert_true(job->train.optimizer.weight_decay == 0.0005);
    assert_int_equal(job->unstructure_prune.prune_params_type, PARE_JOB_PARAMS_CONV1X1_ONLY);
    assert_int_equal(job->unstructure_prune.gmp_config.tunning_iterations, 7);
    assert_string_equal(job->distill.teacher_model, "teacher.onnx");
    assert_int_equal(job->distill.node.n, 4);
    assert_int_equal(job->distill.alpha.n, 2);
    assert_true(job->quant_post.bias_correct);
    assert_int_equal(job->quant_post.batch_size, 64);
    pare_job_free(job);
}

static void test_act_optimizer_builder(void **state)
{
    pare_job *job = load_ok("TrainConfig:\n"
                            "  epochs: 1\n"
                            "  optimizer_builder:\n"
                            "    optimizer:\n"
                            "      type: Momentum\n"
                            "    weight_decay: 0.00004\n");
    char *text;
    pare_error err = {0};
    (void)state;

    assert_int_equal(job->train.optimizer.type, PARE_JOB_OPT_MOMENTUM);
    assert_true(job->train.weight_decay == 0.00004);
    assert_true(job->train.optimizer.weight_decay == 0.00004);
    assert_true(pare_job_is_set(job, "TrainConfig", "optimizer"));
    assert_true(pare_job_is_set(job, "TrainConfig", "weight_decay"));
    /* written back in pare's spelling */
    text = pare_job_to_yaml(job, false, &err);
    assert_string_equal(text, "TrainConfig:\n"
                              "  epochs: 1\n"
                              "  optimizer: Momentum\n"
                              "  weight_decay: 4.0e-05\n");
    pare_free(text);
    pare_job_free(job);

    expect_error("TrainConfig:\n  optimizer: SGD\n  optimizer_builder:\n    optimizer: {type: Adam}\n",
                 "job.yaml:4:5",
                 "'optimizer' is set twice in TrainConfig (directly and through 'optimizer_builder')",
                 "keep one");
    expect_error("TrainConfig:\n  optimizer_builder: {weight_decay: 0.1}\n  weight_decay: 0.1\n",
                 "job.yaml:3:3",
                 "'weight_decay' is set twice in TrainConfig (directly and through "
                 "'optimizer_builder')", "keep one");
    expect_error("TrainConfig:\n  optimizer_builder: {optimiser: {type: SGD}}\n", "job.yaml:2:23",
                 "unknown key 'optimiser' in TrainConfig.optimizer_builder",
                 "did you mean 'optimizer'?");
}

static void test_empty_section_means_defaults(void **state)
{
    pare_job *job = load_ok("QuantPost:\nGlobal:\n  model: m.onnx\n");
    (void)state;

    assert_true(job->quant_post.meta.present);
    assert_int_equal(job->quant_post.meta.set, 0);
    assert_int_equal(job->quant_post.weight_bits, 8);
    assert_false(job->train.meta.present);
    pare_job_free(job);
}

static void test_fleetx_compress_form(void **state)
{
    pare_job *job = load_ok("Compress:\n"
                            "  pretrained: ./model.onnx\n"
                            "  Quantization:\n"
                            "    weight_bits: 4\n"
                            "  Distillation:\n"
                            "    alpha: 2.0\n"
                            "Global:\n"
                            "  save_dir: out\n");
    pare_error err = {0};
    char *text;
    (void)state;

    assert_string_equal(job->global.model, "./model.onnx");
    assert_true(pare_job_is_set(job, "Global", "model"));
    assert_true(job->quant_aware.meta.present);
    assert_int_equal(job->quant_aware.weight_bits, 4);
    assert_true(job->distill.alpha.v[0] == 2.0);
    assert_int_equal(pare_job_check_runnable(job, NULL, &err), PARE_OK);
    /* written back in pare's own form */
    text = pare_job_to_yaml(job, false, &err);
    assert_string_equal(text, "Global:\n"
                              "  model: ./model.onnx\n"
                              "  save_dir: out\n"
                              "Distillation:\n"
                              "  alpha: [2]\n"
                              "QuantAware:\n"
                              "  weight_bits: 4\n");
    pare_free(text);
    pare_job_free(job);

    expect_error("Compress:\n  pretrained: a.onnx\n  Prune: {}\n", "job.yaml:3:3",
                 "unknown key 'Prune' in Compress", "did you mean 'ChannelPrune'?");
    expect_error("Compress:\n  pretrained: a.onnx\nGlobal:\n  model: b.onnx\n", "job.yaml:2:3",
                 "'pretrained' in Compress and 'model' in Global both set the model", "keep one");
    expect_error("QuantAware: {}\nCompress:\n  Quantization: {}\n", "job.yaml:3:3",
                 "section 'Quantization' is an alias of 'QuantAware'; both are given", "keep one");
}

/* ---- errors, one kind at a time ---- */

static void test_unknown_key_has_location_and_hint(void **state)
{
    (void)state;
    expect_error("QuantPost:\n  weight_bit: 8\n", "job.yaml:2:3",
                 "unknown key 'weight_bit' in QuantPost", "did you mean 'weight_bits'?");
    expect_error("TrainConfig:\n  optimizer:\n    momentun: 0.9\n", "job.yaml:3:5",
                 "unknown key 'momentun' in TrainConfig.optimizer", "did you mean 'momentum'?");
    expect_error("Global:\n  zzzzzz: 1\n", "job.yaml:2:3", "unknown key 'zzzzzz' in Global", "");
}

static void test_unknown_section(void **state)
{
    (void)state;
    expect_error("QuantPst:\n  weight_bits: 8\n", "job.yaml:1:1", "unknown section 'QuantPst'",
                 "did you mean 'QuantPost'?");
    expect_error("- a\n- b\n", "job.yaml:1:1", "a job file must be a mapping of sections",
                 "start with a section such as 'Global:'");
    expect_error("Global: 3\n", "job.yaml:1:9",
                 "section 'Global' must be a mapping of keys, got '3'", "");
}

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("QuantPost:\n  weight_bits: eight\n", "job.yaml:2:16",
                 "'weight_bits' in QuantPost must be an integer, got 'eight'", "");
    expect_error("QuantPost:\n  weight_bits: [8]\n", "job.yaml:2:16",
                 "'weight_bits' in QuantPost must be an integer, got a list", "");
    expect_error("QuantPost:\n  weight_bits: \"8\"\n", "job.yaml:2:16",
                 "'weight_bits' in QuantPost must be an integer, got the string '8'",
                 "remove the quotes");
    expect_error("QuantPost:\n  hist_percent: high\n", "job.yaml:2:17",
                 "'hist_percent' in QuantPost must be a finite number, got 'high'", "");
    expect_error("QuantPost:\n  bias_correct: 2\n", "job.yaml:2:17",
                 "'bias_correct' in QuantPost must be true or false, got '2'", "");
    expect_error("QuantPost:\n  skip_tensor_list: {a: 1}\n", "job.yaml:2:21",
                 "'skip_tensor_list' in QuantPost must be a list of names, got a mapping", "");
    expect_error("Sensitivity:\n  ratios: [0.1, x]\n", "job.yaml:2:17",
                 "each item of 'ratios' in Sensitivity must be a finite number, got 'x'", "");
    expect_error("QuantPost:\n  skip_tensor_list: [a, ~]\n", "job.yaml:2:25",
                 "each item of 'skip_tensor_list' in QuantPost must be a name, got null", "");
    expect_error("QuantPost:\n  regions: [[[a], [b]], b]\n", "job.yaml:2:25",
                 "each region of 'regions' in QuantPost must be [[input names], [output names]], "
                 "got 'b'", "write a region as [[in1, in2], [out1]]");
    expect_error("QuantPost:\n  regions: [[[a], []]]\n", "job.yaml:2:19",
                 "the outputs of each region of 'regions' in QuantPost must name at least one "
                 "value", "");
    expect_error("TrainConfig:\n  learning_rate: [1]\n", "job.yaml:2:18",
                 "'learning_rate' in TrainConfig must be a number or a mapping, got a list", "");
    expect_error("Global:\n  batch_size:\n", "job.yaml:2:14",
                 "'batch_size' in Global must be an integer, got null", "");
    expect_error("Global:\n  batch_size: 1e400\n", "job.yaml:2:15",
                 "'batch_size' in Global must be an integer, got '1e400'", "");
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_error("QuantPost:\n  weight_bits: 16\n", "job.yaml:2:16",
                 "'weight_bits' in QuantPost must be in [2, 8], got 16", "");
    expect_error("ChannelPrune:\n  pruned_ratio: 1.0\n", "job.yaml:2:17",
                 "'pruned_ratio' in ChannelPrune must be in [0, 1), got 1.0", "");
    expect_error("ChannelPrune:\n  pruned_ratio: -0.1\n", "job.yaml:2:17",
                 "'pruned_ratio' in ChannelPrune must be in [0, 1), got -0.1", "");
    expect_error("Global:\n  batch_size: -4\n", "job.yaml:2:15",
                 "'batch_size' in Global must be >= 1, got -4", "");
    expect_error("Distillation:\n  temperature: 0\n", "job.yaml:2:16",
                 "'temperature' in Distillation must be > 0, got 0", "");
    expect_error("HyperParameterOptimization:\n  hist_percent: [0.999, 0.98]\n", "job.yaml:2:17",
                 "'hist_percent' in HyperParameterOptimization must be a range [lo, hi] with "
                 "lo <= hi", "");
    expect_error("HyperParameterOptimization:\n  batch_num: [10]\n", "job.yaml:2:14",
                 "'batch_num' in HyperParameterOptimization must be a range [lo, hi] with "
                 "lo <= hi", "");
    expect_error("Layers:\n  conv1.weight: 1.5\n", "job.yaml:2:17",
                 "'conv1.weight' in Layers must be in [0, 1), got 1.5", "");
}

static void test_bad_choice_hints_the_closest(void **state)
{
    (void)state;
    expect_error("QuantPost:\n  algo: kl\n", "job.yaml:2:9",
                 "'algo' in QuantPost must be one of abs_max, avg, hist, KL, mse, got 'kl'",
                 "did you mean 'KL'?");
    expect_error("TrainConfig:\n  optimizer: Adamw\n", "job.yaml:2:14",
                 "'optimizer' in TrainConfig must be one of SGD, Momentum, Adam, AdamW, got 'Adamw'",
                 "did you mean 'AdamW'?");
    expect_error("Distillation:\n  loss: [l2, softlabel]\n", "job.yaml:2:14",
                 "each item of 'loss' in Distillation must be one of soft_label, l2, mse, cosine, "
                 "fsp, got 'softlabel'", "did you mean 'soft_label'?");
}

static void test_alias_and_duplicate_clash(void **state)
{
    (void)state;
    expect_error("QuantPost:\n  bias_correct: true\n  bias_correction: false\n", "job.yaml:3:3",
                 "'bias_correction' is an alias of 'bias_correct'; both are set in QuantPost",
                 "keep one");
    expect_error("QuantPost:\n  weight_bits: 8\n  weight_bits: 4\n", "job.yaml:3:3",
                 "duplicate key 'weight_bits' in QuantPost", "first set at job.yaml:2:3");
    expect_error("QuantPost: {}\nQuantPost: {}\n", "job.yaml:2:1",
                 "duplicate section 'QuantPost'", "first given at job.yaml:1:1");
    expect_error("Layers:\n  a: 0.1\n  a: 0.2\n", "job.yaml:3:3", "duplicate key 'a' in Layers",
                 "first set at job.yaml:2:3");
    expect_error("TrainConfig:\n  weight_decay: 0.1\n  optimizer: {type: SGD, weight_decay: 0.2}\n",
                 "job.yaml:3:26",
                 "'weight_decay' differs between TrainConfig and TrainConfig.optimizer", "keep one");
}

static void test_yaml_syntax_error(void **state)
{
    pare_job *job = NULL;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_job_load_string("Global:\n  model: a\n bad: [\n", "job.yaml", &job,
                                          NULL, &err), PARE_EINPUT);
    assert_null(job);
    assert_string_equal(err.where, "job.yaml:3:2");
    assert_string_equal(err.msg, "invalid yaml: did not find expected key");
    assert_string_equal(err.hint, "while parsing a block mapping at line 1");
    assert_int_equal(pare_job_load_string("Global:\n\tmodel: a\n", "job.yaml", &job, NULL, &err),
                     PARE_EINPUT);
    assert_string_equal(err.where, "job.yaml:2:1");
    assert_string_equal(err.hint, "indent with spaces: yaml does not allow tabs");
    assert_int_equal(pare_job_load_string("QuantPost: {}\n---\nGlobal: {}\n", "job.yaml", &job, NULL, &err),
                     PARE_EINPUT);
    assert_string_equal(err.msg, "more than one yaml document");
}

static void test_distillation_rules(void **state)
{
    pare_job *job;
    (void)state;

    job = load_ok("Distillation:\n"
                  "  pairs:\n"
                  "    - {teacher: t.fc1, student: s.fc1, loss: mse, alpha: 0.5}\n"
                  "    - teacher: logits\n"
                  "      student: logits\n");
    assert_int_equal(job->distill.pairs.n, 2);
    assert_string_equal(job->distill.pairs.v[0].teacher, "t.fc1");
    assert_int_equal(job->distill.pairs.v[0].loss, PARE_JOB_LOSS_MSE);
    assert_true(job->distill.pairs.v[0].alpha == 0.5);
    assert_int_equal(job->distill.pairs.v[1].loss, PARE_JOB_LOSS_SOFT_LABEL);
    assert_true(job->distill.pairs.v[1].alpha == 1.0);
    pare_job_free(job);

    expect_error("Distillation:\n  pairs:\n    - {teacher: a}\n", "job.yaml:3:7",
                 "missing key 'student' in Distillation.pairs[0]", "");
    expect_error("Distillation:\n  node: [a]\n  pairs: [{teacher: a, student: b}]\n",
                 "job.yaml:3:3", "'node' and 'pairs' are both set in Distillation",
                 "use one of them");
    expect_error("Distillation:\n  teacher_model: t.onnx\n  node: [a, b, c]\n", "job.yaml:3:3",
                 "with 'teacher_model', 'node' must alternate teacher and student names, got 3 "
                 "names", "list teacher and student names in turn");
    expect_error("Distillation:\n  node: [a, b]\n  alpha: [1, 2, 3]\n", "job.yaml:3:3",
                 "'alpha' in Distillation has 3 values for 2 pairs",
                 "give one value or one per pair");
}

static void test_cross_key_rules(void **state)
{
    (void)state;
    expect_error("TrainConfig:\n  learning_rate:\n    type: PiecewiseDecay\n"
                 "    boundaries: [100, 200]\n    values: [0.1, 0.01]\n",
                 "job.yaml:2:3",
                 "PiecewiseDecay needs one more value than boundaries, got 2 values for 2 "
                 "boundaries", "");
    expect_error("ASPPrune:\n  n: 4\n", "job.yaml:2:3",
                 "'n' must be less than 'm' in ASPPrune, got n=4, m=4", "");
}

static void test_every_problem_is_reported(void **state)
{
    pare_job *job = NULL;
    pare_error err = {0};
    pare_job_diags diags = {0};
    static const char *const text = "Global:\n"
                                    "  modle: a.onnx\n"
                                    "  batch_size: -1\n"
                                    "QuantPost:\n"
                                    "  weight_bit: 8\n"
                                    "  algo: kl\n"
                                    "ChanelPrune: {}\n";
    (void)state;

    assert_int_equal(pare_job_load_string(text, "job.yaml", &job, &diags, &err), PARE_EINPUT);
    assert_null(job);
    assert_int_equal(diags.n, 5);
    assert_string_equal(diags.v[0].where, "job.yaml:2:3");
    assert_string_equal(diags.v[0].hint, "did you mean 'model'?");
    assert_string_equal(diags.v[1].where, "job.yaml:3:15");
    assert_string_equal(diags.v[2].where, "job.yaml:5:3");
    assert_string_equal(diags.v[2].hint, "did you mean 'weight_bits'?");
    assert_string_equal(diags.v[3].where, "job.yaml:6:9");
    assert_string_equal(diags.v[3].hint, "did you mean 'KL'?");
    assert_string_equal(diags.v[4].where, "job.yaml:7:1");
    assert_string_equal(diags.v[4].msg, "unknown section 'ChanelPrune'");
    assert_string_equal(diags.v[4].hint, "did you mean 'ChannelPrune'?");
    assert_string_equal(err.where, diags.v[0].where);
    assert_string_equal(err.msg, diags.v[0].msg);
    pare_job_diags_fini(&diags);
    pare_job_diags_fini(&diags);
}

static void test_runnable_needs_model_and_save_dir(void **state)
{
    pare_job *job = load_ok("Global:\n  data: fashion-mnist\n");
    pare_job_diags diags = {0};
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_job_check_runnable(job, &diags, &err), PARE_EINPUT);
    assert_int_equal(diags.n, 2);
    assert_string_equal(err.where, "job.yaml:2:3");
    assert_string_equal(err.msg, "missing 'model' in Global");
    assert_string_equal(err.hint, "add 'model:' under Global");
    assert_string_equal(diags.v[1].msg, "missing 'save_dir' in Global");
    pare_job_diags_fini(&diags);
    pare_job_free(job);
}

static void test_missing_file(void **state)
{
    pare_job *job = (pare_job *)1;
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_job_load("/nonexistent/job.yaml", &job, NULL, &err), PARE_EIO);
    assert_null(job);
    assert_string_equal(err.where, "/nonexistent/job.yaml");
    assert_string_equal(err.msg, "cannot open: No such file or directory");
}

/* ---- writers ---- */

static void test_resolved_round_trip(void **state)
{
    pare_job *job = load_ok(full_job), *back = NULL, *explicit_back = NULL;
    pare_error err = {0};
    char *text;
    (void)state;

    assert_int_equal(pare_job_save_resolved(job, tmp(0), &err), PARE_OK);
    assert_int_equal(pare_job_load(tmp(0), &back, NULL, &err), PARE_OK);
    assert_true(pare_job_equal(job, back));
    /* canonical spellings, defaults filled, FleetX/ACT aliases gone */
    text = pare_job_to_yaml(job, true, &err);
    assert_non_null(text);
    assert_non_null(strstr(text, "QuantAware:"));
    assert_null(strstr(text, "Quantization:"));
    assert_non_null(strstr(text, "  model: tests/data/lenet5.onnx\n"));
    assert_non_null(strstr(text, "  bias_correct: true\n"));
    assert_non_null(strstr(text, "  batch_nums: 5\n"));
    assert_non_null(strstr(text, "  weight_quantize_type: channel_wise_abs_max\n"));
    assert_non_null(strstr(text, "  seed: 1\n"));
    assert_non_null(strstr(text, "  learning_rate:\n    type: CosineAnnealingDecay\n"));
    assert_non_null(strstr(text, "  prune_params_type: null\n"));
    assert_null(strstr(text, "ffn_ratio"));
    pare_free(text);

    /* the explicit writer keeps only what was set, and loads back equal */
    assert_int_equal(pare_job_save(job, tmp(1), &err), PARE_OK);
    assert_int_equal(pare_job_load(tmp(1), &explicit_back, NULL, &err), PARE_OK);
    assert_true(pare_job_equal(job, explicit_back));
    text = pare_job_to_yaml(job, false, &err);
    assert_null(strstr(text, "seed"));
    assert_non_null(strstr(text, "  skip_tensor_list: [conv1.weight]\n"));
    pare_free(text);

    /* a changed value breaks equality */
    back->quant_post.weight_bits = 4;
    assert_false(pare_job_equal(job, back));
    pare_job_free(back);
    pare_job_free(explicit_back);
    pare_job_free(job);
}

/* tensor_bits: a name -> bits mapping in QuantPost and QuantAware, saved
 * back by both writers; bad widths and shapes are located. */
static void test_tensor_bits(void **state)
{
    pare_job *job = load_ok("QuantPost:\n  tensor_bits:\n    conv1.weight: 4\n    /fc1/Gemm: 6\n"
                            "QuantAware:\n  tensor_bits: {input: 3}\n");
    pare_job *back = NULL;
    pare_error err = {0};
    char *text;
    (void)state;

    assert_int_equal(job->quant_post.tensor_bits.n, 2);
    assert_string_equal(job->quant_post.tensor_bits.names[1], "/fc1/Gemm");
    assert_int_equal(job->quant_post.tensor_bits.v[0], 4);
    assert_int_equal(job->quant_aware.tensor_bits.n, 1);
    assert_int_equal(job->quant_aware.tensor_bits.v[0], 3);
    for (int resolved = 0; resolved < 2; resolved++) {
        text = pare_job_to_yaml(job, resolved, &err);
        assert_non_null(text);
        assert_non_null(strstr(text, "  tensor_bits:\n    conv1.weight: 4\n    /fc1/Gemm: 6\n"));
        assert_int_equal(pare_job_load_string(text, "saved.yaml", &back, NULL, &err), PARE_OK);
        assert_true(pare_job_equal(job, back));
        pare_job_free(back);
        pare_free(text);
    }
    job->quant_post.tensor_bits.v[1] = 5;
    assert_int_equal(pare_job_load_string("QuantPost:\n  tensor_bits:\n    conv1.weight: 4\n"
                                          "    /fc1/Gemm: 6\nQuantAware:\n  tensor_bits: {input: 3}\n",
                                          "job.yaml", &back, NULL, &err), PARE_OK);
    assert_false(pare_job_equal(job, back));
    pare_job_free(back);
    pare_job_free(job);
    expect_error("QuantPost:\n  tensor_bits:\n    conv1.weight: 9\n", "job.yaml:3:19",
                 "'conv1.weight' in 'tensor_bits' in QuantPost must be in [2, 8], got 9", "");
    expect_error("QuantPost:\n  tensor_bits: [conv1.weight]\n", "job.yaml:2:16",
                 "'tensor_bits' in QuantPost must be a mapping of names to integers, got a list",
                 "write it as a mapping, e.g. {conv1.weight: 4}");
    expect_error("QuantAware:\n  tensor_bits: {a: 4, a: 5}\n", "job.yaml:2:23",
                 "duplicate key 'a' in 'tensor_bits' in QuantAware", "first set at job.yaml:2:17");
}

static void test_strings_that_look_like_numbers_survive(void **state)
{
    pare_job *job = load_ok("Global:\n  input_name: \"1\"\n  data: \"null\"\n"
                            "Layers:\n  \"123\": 0.5\n"
                            "Distillation:\n  node: [\"true\", 'a: b']\n");
    pare_job *back = NULL;
    pare_error err = {0};
    char *text = pare_job_to_yaml(job, true, &err);
    (void)state;

    assert_string_equal(job->global.input_name, "1");
    assert_string_equal(job->global.data, "null");
    assert_non_null(text);
    assert_int_equal(pare_job_load_string(text, "resolved.yaml", &back, NULL, &err), PARE_OK);
    assert_true(pare_job_equal(job, back));
    assert_string_equal(back->distill.node.v[1], "a: b");
    pare_free(text);
    pare_job_free(back);
    pare_job_free(job);
}

static void test_new_job_round_trips_with_every_section(void **state)
{
    static const char *const sections[] = {
        "Global", "TrainConfig", "Distillation", "QuantPost", "QuantAware",
        "HyperParameterOptimization", "ChannelPrune", "UnstructurePrune", "ASPPrune",
        "TransformerPrune", "Sensitivity"};
    pare_job *job = pare_job_new(), *back = NULL;
    pare_error err = {0};
    char *text;
    (void)state;

    /* Every default, written out and read back, must be accepted unchanged. */
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        pare_job_meta *meta = NULL;
        if (!strcmp(sections[i], "Global")) meta = &job->global.meta;
        else if (!strcmp(sections[i], "TrainConfig")) meta = &job->train.meta;
        else if (!strcmp(sections[i], "Distillation")) meta = &job->distill.meta;
        else if (!strcmp(sections[i], "QuantPost")) meta = &job->quant_post.meta;
        else if (!strcmp(sections[i], "QuantAware")) meta = &job->quant_aware.meta;
        else if (!strcmp(sections[i], "HyperParameterOptimization")) meta = &job->hpo.meta;
        else if (!strcmp(sections[i], "ChannelPrune")) meta = &job->channel_prune.meta;
        else if (!strcmp(sections[i], "UnstructurePrune")) meta = &job->unstructure_prune.meta;
        else if (!strcmp(sections[i], "ASPPrune")) meta = &job->asp_prune.meta;
        else if (!strcmp(sections[i], "TransformerPrune")) meta = &job->transformer_prune.meta;
        else meta = &job->sensitivity.meta;
        meta->present = true;
    }
    text = pare_job_to_yaml(job, true, &err);
    assert_non_null(text);
    if (pare_job_load_string(text, "resolved.yaml", &back, NULL, &err) != PARE_OK)
        fail_msg("%s: %s\n%s", err.where, err.msg, text);
    assert_true(pare_job_equal(job, back));
    /* scalar forms for a default learning rate and optimizer */
    assert_non_null(strstr(text, "  learning_rate: 0.0001\n"));
    assert_non_null(strstr(text, "  optimizer: AdamW\n"));
    assert_non_null(strstr(text, "  hist_percent: [0.98, 0.999]\n"));
    pare_free(text);
    pare_job_free(back);
    pare_job_free(job);
}

static void test_save_to_bad_path_fails_cleanly(void **state)
{
    pare_job *job = pare_job_new();
    pare_error err = {0};
    (void)state;

    assert_int_equal(pare_job_save_resolved(job, "/nonexistent/dir/job.yaml", &err), PARE_EIO);
    assert_string_equal(err.where, "/nonexistent/dir/job.yaml");
    assert_string_equal(err.msg, "cannot create: No such file or directory");
    pare_job_free(job);
}

/* ---- editing ---- */

static void test_set_validates_and_marks(void **state)
{
    pare_job *job = pare_job_new();
    pare_error err = {0};
    char *text;
    (void)state;

    assert_int_equal(pare_job_set(job, "QuantPost", "weight_bits", "4", &err), PARE_OK);
    assert_int_equal(job->quant_post.weight_bits, 4);
    assert_true(job->quant_post.meta.present);
    assert_true(pare_job_is_set(job, "QuantPost", "weight_bits"));
    assert_int_equal(pare_job_set(job, "QuantPost", "skip_tensor_list", "[conv1.weight, fc2]",
                                  &err), PARE_OK);
    assert_int_equal(job->quant_post.skip_tensor_list.n, 2);
    assert_int_equal(pare_job_set(job, "Quantization", "use_pact", "true", &err), PARE_OK);
    assert_true(job->quant_aware.use_pact);
    assert_int_equal(pare_job_set(job, "TrainConfig", "optimizer", "{type: Adam, beta1: 0.8}",
                                  &err), PARE_OK);
    assert_int_equal(job->train.optimizer.type, PARE_JOB_OPT_ADAM);
    assert_true(job->train.optimizer.beta1 == 0.8);
    assert_int_equal(pare_job_set(job, "Layers", "conv1.weight", "0.3", &err), PARE_OK);
    assert_int_equal(pare_job_set(job, "Layers", "conv1.weight", "0.4", &err), PARE_OK);
    assert_int_equal(job->layers.n, 1);
    assert_true(job->layers.ratios[0] == 0.4);
    assert_int_equal(pare_job_set(job, "Global", "batch_size", "16", &err), PARE_OK);
    assert_int_equal(job->quant_post.batch_size, 16);   /* inherited */

    /* a bad value leaves the job as it was */
    assert_int_equal(pare_job_set(job, "QuantPost", "weight_bits", "9", &err), PARE_EINPUT);
    assert_string_equal(err.where, "QuantPost.weight_bits");
    assert_string_equal(err.msg, "'weight_bits' in QuantPost must be in [2, 8], got 9");
    assert_int_equal(job->quant_post.weight_bits, 4);
    assert_int_equal(pare_job_set(job, "QuantPost", "weight_bitz", "4", &err), PARE_EINPUT);
    assert_string_equal(err.hint, "did you mean 'weight_bits'?");
    assert_int_equal(pare_job_set(job, "QuantPots", "weight_bits", "4", &err), PARE_EINPUT);
    assert_string_equal(err.msg, "unknown section 'QuantPots'");
    assert_string_equal(err.hint, "did you mean 'QuantPost'?");
    assert_false(pare_job_is_set(job, "QuantPost", "algo"));
    assert_false(pare_job_is_set(job, "Nope", "algo"));

    /* rules across keys are checked on demand */
    assert_int_equal(pare_job_validate(job, NULL, &err), PARE_OK);
    assert_int_equal(pare_job_set(job, "Distillation", "alpha", "[1, 2]", &err), PARE_OK);
    assert_int_equal(pare_job_validate(job, NULL, &err), PARE_EINPUT);
    assert_string_equal(err.msg, "'alpha' in Distillation has 2 values for 1 pairs");
    assert_string_equal(err.where, "job");
    assert_int_equal(pare_job_set(job, "Distillation", "node", "[a, b]", &err), PARE_OK);
    assert_int_equal(pare_job_validate(job, NULL, &err), PARE_OK);
    assert_int_equal(pare_job_set(job, "TrainConfig", "optimizer_builder", "{}", &err),
                     PARE_EINPUT);
    assert_string_equal(err.msg,
                        "'optimizer_builder' is only read from files; set the keys it stands for");
    job->distill.meta.present = false;

    /* the plan the TUI saves holds exactly the edits */
    text = pare_job_to_yaml(job, false, &err);
    assert_string_equal(text, "Global:\n"
                              "  batch_size: 16\n"
                              "TrainConfig:\n"
                              "  optimizer:\n"
                              "    type: Adam\n"
                              "    beta1: 0.8\n"
                              "QuantPost:\n"
                              "  weight_bits: 4\n"
                              "  skip_tensor_list: [conv1.weight, fc2]\n"
                              "QuantAware:\n"
                              "  use_pact: true\n"
                              "Layers:\n"
                              "  conv1.weight: 0.4\n");
    pare_free(text);
    pare_job_free(job);
}

/* ---- robustness ---- */

static void test_out_of_memory_is_reported(void **state)
{
    long base, n;
    pare_job *job = NULL;
    pare_error err = {0};
    (void)state;

    base = pare_alloc_count();
    job = load_ok(full_job);
    n = pare_alloc_count() - base;
    pare_job_free(job);
    for (long nth = 1; nth <= n; nth++) {
        pare_status rc;
        pare_alloc_fail_at(nth);
        rc = pare_job_load_string(full_job, "job.yaml", &job, NULL, &err);
        pare_alloc_fail_at(0);
        if (rc == PARE_OK) {
            pare_job_free(job);
            continue;
        }
        assert_int_equal(rc, PARE_ENOMEM);
        assert_null(job);
    }
}

static void test_out_of_memory_in_writer_and_set(void **state)
{
    pare_job *job = load_ok(full_job);
    pare_error err = {0};
    long base, n;
    char *text;
    (void)state;

    base = pare_alloc_count();
    text = pare_job_to_yaml(job, true, &err);
    n = pare_alloc_count() - base;
    assert_non_null(text);
    for (long nth = 1; nth <= n; nth++) {
        char *t;
        pare_alloc_fail_at(nth);
        t = pare_job_to_yaml(job, true, &err);
        pare_alloc_fail_at(0);
        if (t) {
            assert_string_equal(t, text);
            pare_free(t);
        } else {
            assert_int_equal(err.code, PARE_ENOMEM);
        }
    }
    pare_free(text);

    base = pare_alloc_count();
    assert_int_equal(pare_job_set(job, "QuantPost", "skip_tensor_list", "[a, b, c]", &err), PARE_OK);
    n = pare_alloc_count() - base;
    for (long nth = 1; nth <= n; nth++) {
        pare_status rc;
        int before = job->quant_post.not_quant_pattern.n;
        pare_alloc_fail_at(nth);
        rc = pare_job_set(job, "QuantPost", "not_quant_pattern", nth % 2 ? "[x, y]" : "[z]", &err);
        pare_alloc_fail_at(0);
        assert_true(rc == PARE_OK || rc == PARE_ENOMEM);
        /* a failed edit leaves the old value */
        assert_int_equal(job->quant_post.not_quant_pattern.n,
                         rc == PARE_OK ? (nth % 2 ? 2 : 1) : before);
    }
    assert_int_equal(job->quant_post.skip_tensor_list.n, 3);
    pare_job_free(job);
}

/* ---- docs/config.md ---- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[len] = '\0';
    fclose(f);
    return buf;
}

#define GENERATED_MARK "<!-- generated from the schema by pare_job_schema_markdown; do not edit below -->\n"

static void test_config_md_is_fresh(void **state)
{
    char *doc = read_text(CONFIG_MD), *gen = pare_job_schema_markdown(), *mark, *ex, *end;
    pare_job *job = NULL;
    pare_error err = {0};
    (void)state;

    assert_non_null(doc);
    assert_non_null(gen);
    mark = strstr(doc, GENERATED_MARK);
    assert_non_null(mark);
    if (strcmp(mark + strlen(GENERATED_MARK), gen))
        fail_msg("docs/config.md is stale: regenerate the part below the marker with "
                 "pare_job_schema_markdown() (pare config --doc)");
    /* The full example in the intro must itself be a valid, runnable job. */
    ex = strstr(doc, "```yaml\n");
    assert_true(ex && ex < mark);
    ex += strlen("```yaml\n");
    end = strstr(ex, "```\n");
    assert_non_null(end);
    *end = '\0';
    if (pare_job_load_string(ex, "config.md", &job, NULL, &err) != PARE_OK)
        fail_msg("example: %s: %s", err.where, err.msg);
    assert_int_equal(pare_job_check_runnable(job, NULL, &err), PARE_OK);
    pare_job_free(job);
    pare_free(gen);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_has_defaults_and_no_sections),
        cmocka_unit_test(test_act_aliases_are_normalised),
        cmocka_unit_test(test_scalar_forms_and_act_spellings),
        cmocka_unit_test(test_act_optimizer_builder),
        cmocka_unit_test(test_empty_section_means_defaults),
        cmocka_unit_test(test_fleetx_compress_form),
        cmocka_unit_test(test_unknown_key_has_location_and_hint),
        cmocka_unit_test(test_unknown_section),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_bad_choice_hints_the_closest),
        cmocka_unit_test(test_alias_and_duplicate_clash),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_distillation_rules),
        cmocka_unit_test(test_cross_key_rules),
        cmocka_unit_test(test_every_problem_is_reported),
        cmocka_unit_test(test_runnable_needs_model_and_save_dir),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_resolved_round_trip),
        cmocka_unit_test(test_tensor_bits),
        cmocka_unit_test(test_strings_that_look_like_numbers_survive),
        cmocka_unit_test(test_new_job_round_trips_with_every_section),
        cmocka_unit_test(test_save_to_bad_path_fails_cleanly),
        cmocka_unit_test(test_set_validates_and_marks),
        cmocka_unit_test(test_out_of_memory_is_reported),
        cmocka_unit_test(test_out_of_memory_in_writer_and_set),
        cmocka_unit_test(test_config_md_is_fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
