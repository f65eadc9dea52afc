/* test fixture: alerts */
