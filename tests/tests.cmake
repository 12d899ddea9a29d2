# Script tests, one line each: lp_script_test(script-name label ranks)
