/* test fixture: events */
