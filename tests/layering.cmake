# Source layout: the module folders form layers without include cycles (README "What is here").
lp_script_test(layering unit 1)
