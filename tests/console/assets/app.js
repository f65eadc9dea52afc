/* test fixture */ 'use strict';
