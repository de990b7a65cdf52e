# "Which layer hurts" end-to-end tests (label e2e): tests/e2e/quant_sens.sh
# runs `pare quant --error-table` and `pare sens --quant` one case per test,
# on the 256-image sample (resnet8_fmnist needs the full test split and skips
# with 77 without it).
set(PARE_QUANT_SENS_CASES
  error_table sens_lenet5 sens_target_none sens_cosine sens_usage sens_interrupt resnet8_fmnist)
foreach(case ${PARE_QUANT_SENS_CASES})
  add_test(NAME e2e.quant_sens.${case}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/quant_sens.sh ${case})
  set_tests_properties(e2e.quant_sens.${case} PROPERTIES
    LABELS e2e
    SKIP_RETURN_CODE 77
    TIMEOUT 300
    ENVIRONMENT "PARE=$<TARGET_FILE:pare>;SRC=${PROJECT_SOURCE_DIR};WORK=${CMAKE_CURRENT_BINARY_DIR}/work/quant_sens-${case};FMNIST=${PARE_FASHION_MNIST}")
endforeach()
