mod p;
