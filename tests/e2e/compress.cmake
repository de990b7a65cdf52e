# `pare compress` end-to-end tests (label e2e): tests/e2e/compress.sh runs
# one case per test. A case per configs/*.yaml job runs it on Fashion-MNIST
# and asserts its accuracy and outputs (skipped with exit 77 when the train
# and test splits are absent); the others pin the error paths (bad YAML,
# existing save_dir, Ctrl-C, dry run, unsupported sections, relative paths)
# on the 256-image sample. compress.ptq_ort runs the PTQ job's model in ONNX
# Runtime (tests/interop/compress.js; skipped without node or ORT).
find_program(PARE_COMPRESS_NODE node)
set(PARE_COMPRESS_CONFIGS
  ptq_resnet8 ptq_hpo_lenet5 qat_lenet5 qat_pact_lenet5 prune_channel_resnet8 prune_layers_resnet8
  prune_unstructured_lenet5 prune_asp_resnet8 prune_transformer_tiny_vit prune_distill_ptq_resnet8
  unstructured_qat_lenet5 gmp_qat_lenet5
  ptq_abs_max ptq_hist ptq_kl ptq_mse ptq_bias_correction ptq_layerwise_recon
  ptq_regionwise_recon weight_only
  qat_distill fleetx_compress)
set(PARE_COMPRESS_CASES ${PARE_COMPRESS_CONFIGS}
  ptq_ort bad_yaml save_dir_exists cancel dry_run unsupported relative_paths tensor_bits)
foreach(case ${PARE_COMPRESS_CASES})
  add_test(NAME e2e.compress.${case}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/compress.sh ${case})
  set_tests_properties(e2e.compress.${case} PROPERTIES
    LABELS e2e
    SKIP_RETURN_CODE 77
    TIMEOUT 300
    ENVIRONMENT "PARE=$<TARGET_FILE:pare>;SRC=${PROJECT_SOURCE_DIR};WORK=${CMAKE_CURRENT_BINARY_DIR}/work/compress-${case};FMNIST=${PARE_FASHION_MNIST};NODE=${PARE_COMPRESS_NODE}")
endforeach()
