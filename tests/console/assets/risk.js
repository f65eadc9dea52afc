/* test fixture: risk */
