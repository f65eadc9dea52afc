/* test fixture: fleet */
